"""The registration U-Nets run by OpenVINO on a float32 CPU, when it is installed (``pip install ltnet[fast]``).

On a CPU without bfloat16 instructions (``ltnet.device.cpu_has_native_bfloat16``) a transfer runs its U-Net passes
in float32, and they take most of its time at a whole-brain grid. OpenVINO's CPU plugin runs the same graph
(exported once per network and kept while its weights are unchanged) in float32 with fused convolution and
activation kernels; docs/BENCHMARKS.md ("Speed on a float32 CPU") measures it against torch. Its fields differ from
torch's by float32 rounding only; ``tests/test_fast_inference.py`` checks the labels agree.

The choice is automatic: OpenVINO where it imports, the transfer computes in float32 on the CPU and the network
grid has at least ``MIN_VOXELS`` voxels, else torch. Below that a pass is short and the one-time export and
compilation (about 1.5 s per network on a 2-core CPU) would cost more than it saves.
``LTNET_RUNTIME=torch`` forces torch; ``LTNET_RUNTIME=openvino`` forces OpenVINO (a missing one is an error).
Only inference goes through it: the refinement and training need torch's gradients.
"""

import importlib
import io
import os
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from ltnet.device import cpu_has_native_bfloat16
from ltnet.errors import LTNetError
from ltnet.nn.networks import RegistrationNet

RUNTIME_VARIABLE = "LTNET_RUNTIME"
RUNTIMES = ("auto", "torch", "openvino")
MIN_VOXELS = 2**20  # e.g. 96x96x112; a whole brain at 1 mm (160x192x224) has 6.9 million

_compiled = weakref.WeakKeyDictionary()  # RegistrationNet -> (weights key, threads, compiled OpenVINO model)


def _openvino():
    """The ``openvino`` module, or None where it or ``onnx`` (which the graph export needs) is not installed."""
    try:
        importlib.import_module("onnx")
        return importlib.import_module("openvino")
    except ImportError:
        return None


def runtime_for(device: torch.device, voxels: int = MIN_VOXELS) -> str:
    """``"openvino"`` or ``"torch"``: what runs the U-Nets of a transfer on ``device`` at a network grid of ``voxels``
    (see module doc)."""
    choice = os.environ.get(RUNTIME_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in RUNTIMES:
        raise LTNetError(f"{RUNTIME_VARIABLE}={choice}: unknown runtime; use {', '.join(RUNTIMES)}.")
    float32_cpu = torch.device(device).type == "cpu" and not cpu_has_native_bfloat16()
    if choice == "torch" or not float32_cpu or (choice == "auto" and voxels < MIN_VOXELS):
        return "torch"
    if _openvino() is None:
        if choice == "openvino":
            raise LTNetError(
                f"{RUNTIME_VARIABLE}=openvino: OpenVINO is not installed; pip install 'ltnet[fast]', "
                f"or unset {RUNTIME_VARIABLE}."
            )
        return "torch"
    return "openvino"


class _UNetField(torch.nn.Module):
    """``RegistrationNet.unet_field`` as a module of two inputs, the graph OpenVINO converts."""

    def __init__(self, net: RegistrationNet):
        super().__init__()
        self.net = net

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        return self.net.unet_field(moving, fixed)


def _weights_key(net: RegistrationNet) -> tuple:
    """Changes when any parameter of ``net`` is replaced or changed in place."""
    return tuple((p.data_ptr(), p._version) for p in net.parameters())


def _compiled_unet(net: RegistrationNet, example: tuple[torch.Tensor, torch.Tensor]):
    """``net``'s U-Net compiled by OpenVINO for the CPU (any grid size), reused while its weights and torch's thread
    count stay the same."""
    threads = torch.get_num_threads()
    key = _weights_key(net)
    cached = _compiled.get(net)
    if cached is not None and cached[0] == key and cached[1] == threads:
        return cached[2]
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing, about Python values it does not need
        torch.onnx.export(
            _UNetField(net).eval(),
            example,
            buffer,
            input_names=["moving", "fixed"],
            output_names=["field"],
            dynamic_axes={name: {2: "d", 3: "h", 4: "w"} for name in ("moving", "fixed", "field")},
            opset_version=17,
            dynamo=False,
        )
    core = _openvino().Core()
    # OpenVINO's CPU plugin gives the thread that compiles an alternate signal stack of its own and frees it with
    # the compiled models, not always restoring the one before. Python runs its signal handlers on that stack, so
    # compiled on the main thread, a later Ctrl-C (or the SIGTERM that stops a training in the same process) landed
    # on freed memory and crashed the process. A thread of its own leaves the main thread's stack as it was
    # (tests/test_fast_inference.py).
    with ThreadPoolExecutor(1, thread_name_prefix="ltnet-openvino-compile") as compiler:
        compiled = compiler.submit(
            core.compile_model,
            core.read_model(buffer.getvalue(), b""),
            "CPU",
            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        ).result()
    _compiled[net] = (key, threads, compiled)
    return compiled


class OpenVinoRegistrationNet:
    """A ``RegistrationNet`` for inference whose U-Net runs in OpenVINO; same calls, tensors in and out (CPU)."""

    def __init__(self, net: RegistrationNet):
        self.net = net

    def unet_field(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """``(B, 3, D, H, W)`` voxels, as ``RegistrationNet.unet_field`` (inputs ``(B, 1, D, H, W)`` each)."""
        moving, fixed = moving.detach().float().contiguous(), fixed.detach().float().contiguous()
        compiled = _compiled_unet(self.net, (moving[:1], fixed[:1]))
        fields = [
            torch.from_numpy(compiled((m.numpy(), f.numpy()))[0].copy())
            for m, f in zip(moving.split(1), fixed.split(1))
        ]
        return torch.cat(fields)

    def displacement(self, unet_field: torch.Tensor) -> torch.Tensor:
        return self.net.displacement(unet_field)

    def __call__(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        return self.displacement(self.unet_field(moving, fixed))


@dataclass
class InferenceNetworks:
    """``G_F`` and ``G_B`` as ``ltnet.nn.cycle.run_cycle`` calls them, each a ``RegistrationNet`` or its OpenVINO
    twin; ``runtime`` says which."""

    g_forward: object
    g_backward: object
    runtime: str


def inference_networks(networks, device: torch.device, voxels: int = MIN_VOXELS) -> InferenceNetworks:
    """``G_F`` and ``G_B`` of ``networks`` (``LTNetNetworks`` ready for inference on ``device``) in the runtime
    ``runtime_for(device, voxels)`` picks for a network grid of ``voxels``."""
    runtime = runtime_for(device, voxels)
    if runtime == "torch":
        return InferenceNetworks(networks.g_forward, networks.g_backward, runtime)
    return InferenceNetworks(
        OpenVinoRegistrationNet(networks.g_forward), OpenVinoRegistrationNet(networks.g_backward), runtime
    )

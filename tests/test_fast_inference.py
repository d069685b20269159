"""The U-Nets in OpenVINO on a float32 CPU (``ltnet.fast_inference``): the same labels as torch, and torch whenever
OpenVINO is missing, not wanted, or not the right tool (a GPU, a CPU with bfloat16 instructions)."""

import ctypes
import gc
import importlib
import os
import signal
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ltnet import fast_inference, sample
from ltnet.data.io import read_image
from ltnet.errors import LTNetError
from ltnet.model_file import load_model
from ltnet.nn.networks import LTNetNetworks, NetworkConfig
from ltnet.transfer import transfer

needs_openvino = pytest.mark.skipif(
    fast_inference._openvino() is None, reason="OpenVINO is an optional extra: pip install 'ltnet[fast]'"
)
needs_demo_model = pytest.mark.skipif(
    not sample.demo_model_path().exists(), reason="the bundled demo model is built by benchmarks/build_demo_model.py"
)


@pytest.fixture
def float32_cpu(monkeypatch):
    """This CPU taken as one without bfloat16 instructions, the only kind the OpenVINO path is for."""
    monkeypatch.setattr(fast_inference, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.delenv(fast_inference.RUNTIME_VARIABLE, raising=False)


@pytest.fixture
def without_openvino(monkeypatch):
    """``import openvino`` failing, as where the extra is not installed."""
    real = importlib.import_module

    def failing(name, *args):
        if name.split(".")[0] == "openvino":
            raise ImportError(f"No module named '{name}'")
        return real(name, *args)

    monkeypatch.setattr(fast_inference.importlib, "import_module", failing)


@needs_openvino
@needs_demo_model
def test_openvino_labels_agree_with_torch_on_the_sample(float32_cpu, monkeypatch):
    model = load_model(sample.demo_model_path())
    target = read_image(sample.held_out_scan_paths()[0])
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "openvino")  # the sample's grid is below MIN_VOXELS
    assert fast_inference.runtime_for(torch.device("cpu"), 1000) == "openvino"
    calls = []
    unet_field = fast_inference.OpenVinoRegistrationNet.unet_field
    monkeypatch.setattr(
        fast_inference.OpenVinoRegistrationNet, "unet_field", lambda net, *a: calls.append(1) or unet_field(net, *a)
    )
    fast = transfer(model, target, qc=True, extras=False)
    assert len(calls) == 2  # G_F and G_B ran in OpenVINO
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "torch")
    assert fast_inference.runtime_for(torch.device("cpu")) == "torch"
    reference = transfer(model, target, qc=True, extras=False)
    a, b = sitk.GetArrayFromImage(fast.labels), sitk.GetArrayFromImage(reference.labels)
    assert a.shape == b.shape and (b > 0).sum() > 100  # labels were transferred, not an empty map
    assert np.mean(a == b) >= 0.999
    for name in ("origin", "spacing", "direction"):
        getter = f"Get{name.capitalize()}"
        assert getattr(fast.labels, getter)() == getattr(reference.labels, getter)()
    assert fast.qc["score"] == pytest.approx(reference.qc["score"], abs=2e-3)
    assert fast.qc["label_cycle_dice_mean"] == pytest.approx(reference.qc["label_cycle_dice_mean"], abs=2e-3)


@needs_openvino
def test_openvino_field_matches_torch_and_is_recompiled_when_the_weights_change(float32_cpu):
    torch.manual_seed(0)
    nets = LTNetNetworks(NetworkConfig()).eval()
    with torch.no_grad():
        for parameter in nets.g_forward.parameters():
            parameter.normal_(0.0, 0.05)
    passes = fast_inference.inference_networks(nets, torch.device("cpu"))
    moving, fixed = torch.rand(1, 1, 16, 24, 32), torch.rand(1, 1, 16, 24, 32)
    with torch.no_grad():
        expected = nets.g_forward(moving, fixed)
        assert expected.abs().max() > 0.1  # a field worth comparing
        torch.testing.assert_close(passes.g_forward(moving, fixed), expected, rtol=1e-4, atol=1e-4)
        odd = torch.rand(1, 1, 8, 16, 24), torch.rand(1, 1, 8, 16, 24)  # another grid: the same compiled graph
        torch.testing.assert_close(passes.g_forward(*odd), nets.g_forward(*odd), rtol=1e-4, atol=1e-4)
        nets.g_forward.unet.net[1].final_conv_out.conv.bias += 1.0
        torch.testing.assert_close(passes.g_forward(moving, fixed), expected + 1.0, rtol=1e-4, atol=1e-4)


class _SignalStack(ctypes.Structure):
    """``stack_t`` of ``sigaltstack(2)``."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def signal_stack() -> tuple:
    """This thread's alternate signal stack: (address, flags, size)."""
    stack = _SignalStack()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    return stack.ss_sp, stack.ss_flags, stack.ss_size


@needs_openvino
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is read through Linux's libc")
def test_compiling_keeps_the_main_threads_signal_stack_so_a_stop_still_stops(float32_cpu):
    """OpenVINO's CPU plugin sets an alternate signal stack on the thread that compiles and may free it with the
    models; compiled on the main thread, a signal handled after that (Ctrl-C, the SIGTERM that stops a training)
    crashed the process."""
    torch.manual_seed(0)
    networks = LTNetNetworks(NetworkConfig()).eval()
    image = torch.rand(1, 1, 16, 16, 16)
    before = signal_stack()
    for net in (networks.g_forward, networks.g_backward):
        fast_inference.OpenVinoRegistrationNet(net).unet_field(image, image)
    assert signal_stack() == before
    del networks, net
    gc.collect()  # the compiled models go with their networks
    received = []
    previous = signal.signal(signal.SIGTERM, lambda *_: received.append(signal.SIGTERM))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]


def test_without_openvino_the_transfer_runs_in_torch(float32_cpu, without_openvino):
    assert fast_inference._openvino() is None
    assert fast_inference.runtime_for(torch.device("cpu")) == "torch"
    nets = LTNetNetworks(NetworkConfig())
    passes = fast_inference.inference_networks(nets, torch.device("cpu"))
    assert passes.runtime == "torch" and passes.g_forward is nets.g_forward and passes.g_backward is nets.g_backward


@needs_demo_model
def test_transfer_without_openvino_gives_the_torch_labels(float32_cpu, without_openvino, monkeypatch):
    monkeypatch.setattr(fast_inference, "MIN_VOXELS", 0)  # the sample's grid would take OpenVINO if it were there
    model = load_model(sample.demo_model_path())
    target = read_image(sample.held_out_scan_paths()[0])
    fallback = transfer(model, target, qc=False, extras=False)
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "torch")
    forced = transfer(model, target, qc=False, extras=False)
    assert np.array_equal(sitk.GetArrayFromImage(fallback.labels), sitk.GetArrayFromImage(forced.labels))


def test_asking_for_openvino_without_it_is_one_clear_error(float32_cpu, without_openvino, monkeypatch):
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "openvino")
    with pytest.raises(
        LTNetError, match=r"LTNET_RUNTIME=openvino: OpenVINO is not installed; pip install 'ltnet\[fast\]'"
    ):
        fast_inference.runtime_for(torch.device("cpu"))


def test_torch_where_openvino_is_not_the_right_tool(monkeypatch):
    monkeypatch.delenv(fast_inference.RUNTIME_VARIABLE, raising=False)
    monkeypatch.setattr(fast_inference, "_openvino", lambda: object())  # as if installed
    monkeypatch.setattr(fast_inference, "cpu_has_native_bfloat16", lambda: True)
    assert fast_inference.runtime_for(torch.device("cpu")) == "torch"  # bfloat16 CPU: torch's own kernels
    monkeypatch.setattr(fast_inference, "cpu_has_native_bfloat16", lambda: False)
    assert fast_inference.runtime_for(torch.device("cuda")) == "torch"
    assert fast_inference.runtime_for(torch.device("cpu")) == "openvino"
    small = fast_inference.MIN_VOXELS - 1  # a short pass: the one-time compilation would cost more than it saves
    assert fast_inference.runtime_for(torch.device("cpu"), small) == "torch"
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "openvino")
    assert fast_inference.runtime_for(torch.device("cpu"), small) == "openvino"
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "torch")
    assert fast_inference.runtime_for(torch.device("cpu")) == "torch"
    monkeypatch.setenv(fast_inference.RUNTIME_VARIABLE, "onnx")
    with pytest.raises(LTNetError, match="LTNET_RUNTIME=onnx: unknown runtime; use auto, torch, openvino"):
        fast_inference.runtime_for(torch.device("cpu"))

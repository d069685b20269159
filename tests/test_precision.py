"""The precision the networks transfer labels in: bfloat16 where the hardware computes it natively, float32
elsewhere."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ltnet import device as devices
from ltnet import sample
from ltnet.data.io import read_image
from ltnet.model_file import load_model
from ltnet.transfer import transfer


@pytest.mark.parametrize("native", [True, False])
def test_a_cpu_transfers_in_bfloat16_only_where_it_computes_bfloat16_natively(native, monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: native)
    with devices.inference_precision(torch.device("cpu")):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == (torch.bfloat16 if native else torch.float32)
    with devices.mixed_precision(torch.device("cpu")):  # training on a CPU stays float32 either way
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_probe_answers_a_bool_and_keeps_its_answer():
    assert devices.cpu_has_native_bfloat16() in (True, False)
    assert devices.cpu_has_native_bfloat16() is devices.cpu_has_native_bfloat16()


@pytest.mark.parametrize("avx512_bf16, amx", [(True, False), (False, True), (False, False)])
def test_the_probe_reads_the_cpu_capabilities_or_on_older_torch_its_private_probes(avx512_bf16, amx, monkeypatch):
    probe = devices.cpu_has_native_bfloat16.__wrapped__  # uncached
    monkeypatch.setattr(
        torch.cpu,
        "get_capabilities",
        lambda: {"avx512_bf16": avx512_bf16, "amx_bf16": amx, "avx2": True},
        raising=False,
    )
    assert probe() == (avx512_bf16 or amx)
    monkeypatch.delattr(torch.cpu, "get_capabilities")  # torch before get_capabilities
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert probe() == (avx512_bf16 or amx)
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # a torch with neither probe: float32
        monkeypatch.delattr(torch.cpu, name)
    assert probe() is False


@pytest.mark.skipif(not sample.demo_model_path().exists(), reason="needs the bundled demo model")
def test_labels_and_qc_transferred_in_bfloat16_agree_with_float32(monkeypatch):
    model, target = load_model(sample.demo_model_path()), read_image(sample.held_out_scan_paths()[0])
    results = {}
    for native in (False, True):
        monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda native=native: native)
        results[native] = transfer(model, target, "cpu", extras=False)
    exact, fast = (sitk.GetArrayFromImage(results[native].labels) for native in (False, True))
    assert exact.any()
    for value in (1, 2):  # the two hippocampus labels
        a, b = exact == value, fast == value
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.99
    assert np.mean(exact != fast) < 0.001  # measured: 2e-5 to 1.3e-4 on the three held-out scans
    assert results[True].qc["score"] == pytest.approx(results[False].qc["score"], abs=0.005)
    assert results[True].qc["verdict"] == results[False].qc["verdict"]


@pytest.mark.parametrize("native", [True, False])
def test_cpu_inference_lays_the_weights_out_channels_last_with_the_same_fields(native, monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: native)
    model = load_model(sample.demo_model_path())
    atlas = torch.from_numpy(model.atlas.image).float()[None, None]
    scan = torch.roll(atlas, shifts=(2, -1, 1), dims=(2, 3, 4))  # a field with something to do
    with torch.no_grad():
        contiguous = model.networks.g_forward.eval()(atlas, scan)
        nets = devices.ready_for_inference(model.networks, torch.device("cpu"))
        channels_last = nets.g_forward(atlas, scan)
    weights = [m.weight for m in nets.modules() if isinstance(m, torch.nn.Conv3d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last_3d) for w in weights)
    assert contiguous.abs().max() > 0.1
    torch.testing.assert_close(channels_last, contiguous, atol=1e-4, rtol=1e-4)

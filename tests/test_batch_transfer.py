"""Batch transfer in one process: errors from DataLoader workers and GPU out-of-memory become one clear line."""

import pytest
import torch
from sample_training import train_argv

from ltnet import sample
from ltnet.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m.pt"
    code = main(train_argv(out, images=[sample.scan_paths()[0]], iterations=0, grid=(32, 32, 32), progress="jsonl"))
    assert code == 0
    return out


def test_unreadable_target_read_in_a_worker_is_one_clear_error(model, tmp_path, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    code = main(
        [
            "transfer",
            "--model",
            str(model),
            "--target",
            str(sample.scan_paths()[0]),
            str(bad),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--workers",
            "1",
            "--progress",
            "jsonl",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and "ltnet: error:" in error and "broken.nii.gz" in error and "Traceback" not in error


def test_gpu_out_of_memory_names_the_grid_and_what_to_do(model, tmp_path, capsys, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("ltnet.batch_transfer.transfer", out_of_memory)
    code = main(
        [
            "transfer",
            "--model",
            str(model),
            "--target",
            str(sample.scan_paths()[0]),
            "--out",
            str(tmp_path / "x.nii.gz"),
            "--device",
            "cpu",
            "--workers",
            "0",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and "ran out of memory at grid" in error and "--device cpu" in error

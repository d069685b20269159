"""Where one labels-only transfer's time goes: PyTorch's profiler over ``transfer(..., qc=False)`` on the speed
benchmark's pair (``benchmarks/speed.py``), after one warm-up call; prints the operations that took the most device
time (on a GPU) or CPU time, and writes the whole table as JSON lines to ``--out`` when given. With ``--python``,
Python's own profiler instead: the functions by cumulative time, which shows the host work around torch's operators.

    python benchmarks/profile_transfer.py --grid 160 192 224 --device cuda [--out profile.jsonl]
    python benchmarks/profile_transfer.py --grid 160 192 224 --device cuda --python
"""

import argparse
import cProfile
import json
import pstats
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import pair, sync  # noqa: E402

from ltnet.model_file import LTNetModel  # noqa: E402
from ltnet.nn.losses import LossWeights  # noqa: E402
from ltnet.nn.networks import LTNetNetworks, NetworkConfig  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=int, nargs=3, default=[160, 192, 224], metavar=("X", "Y", "Z"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=25, help="operations printed")
    parser.add_argument("--out", type=Path, help="every operation's totals as JSON lines")
    parser.add_argument("--python", action="store_true", help="Python's profiler (cProfile) instead of torch's")
    args = parser.parse_args()
    device = torch.device(args.device)
    atlas, target = pair(tuple(args.grid))
    torch.manual_seed(0)
    model = LTNetModel(LTNetNetworks(NetworkConfig()), atlas, LossWeights.paper())

    def labels_only():
        transfer(model, target, device, prealign=False, qc=False, extras=False)
        sync(device)

    labels_only()
    if args.python:
        with cProfile.Profile() as profiler:
            labels_only()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.rows)
        return
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        labels_only()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    averages = profiler.key_averages()
    print(averages.table(sort_by=key, row_limit=args.rows))
    if args.out:
        with open(args.out, "w") as f:
            for event in averages:
                row = {"name": event.key, "calls": event.count, "self_cpu_us": event.self_cpu_time_total}
                f.write(json.dumps({**row, "self_device_us": event.self_device_time_total}) + "\n")


if __name__ == "__main__":
    main()

"""Progress for people (a tqdm bar on stderr) or programs (one JSON object per line on stdout).

Events (``docs/CORE_CONTRACT.md``): ``start`` (the torch build and device in use), ``progress`` (an iteration or a
finished target), ``stage`` (the stage one target is in), ``done``.
"""

import json
import sys

import torch
from tqdm import tqdm

from ltnet.device import cpu_name, precision_name


def start_event(device: torch.device, inference: bool) -> dict:
    """The ``start`` event: which torch build, device and precision this process computes with."""
    cuda = device.type == "cuda"
    return {
        "event": "start",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device) if cuda else "cpu",
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "precision": precision_name(device, inference),
        "gpu_visible_but_unused": not cuda and torch.cuda.is_available(),
    }


class JsonLines:
    """Prints each event as one JSON line on stdout, flushed at once (the Slicer panels read these)."""

    def __call__(self, event: dict) -> None:
        print(json.dumps(event), flush=True)

    def close(self, failed: bool = False) -> None:
        pass


class Bar:
    """A tqdm bar on stderr: training shows the main losses in its postfix, transfer the stage of the current target.

    The bar is drawn from the first event on, so its rate counts from the start of the work; it ends with one line.
    """

    def __init__(self, description: str):
        self.description = description
        self.bar = None

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind not in ("progress", "stage"):
            return
        total = event.get("total", 0)
        if self.bar is None:
            initial = event["iteration"] - 1 if "iteration" in event else 0
            self.bar = tqdm(total=total, initial=initial, desc=self.description, file=sys.stderr, dynamic_ncols=True)
        if kind == "stage":
            steps = f" {event['step']}/{event['steps']}" if event.get("steps", 1) > 1 else ""
            self.bar.set_postfix_str(f"{event['stage']}{steps}", refresh=True)
            return
        if "losses" in event:
            losses = event["losses"]
            postfix = {k: f"{losses[k]:.3f}" for k in ("generator", "sim", "cyc") if k in losses}
            self.bar.set_postfix(postfix, refresh=False)
        else:  # a target is done: its stage no longer applies
            self.bar.set_postfix_str("", refresh=False)
        position = event.get("iteration", event.get("done", 0))
        if position >= total:  # the last step: drawn once, by close()
            self.bar.n = position
        else:
            self.bar.update(position - self.bar.n)

    def close(self, failed: bool = False) -> None:
        """Ends the bar with its final line, or (``failed``) erases it so an error message starts a clean line."""
        if self.bar is not None:
            self.bar.leave = not failed
            self.bar.close()
            self.bar = None


def reporter(kind: str, description: str):
    """``bar`` or ``jsonl``."""
    return JsonLines() if kind == "jsonl" else Bar(description)

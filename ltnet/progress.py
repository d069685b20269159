"""Progress for people (a tqdm bar on stderr) or programs (one JSON object per line on stdout)."""

import json
import sys

from tqdm import tqdm


class JsonLines:
    """Prints each event as one JSON line on stdout, flushed at once (the Slicer panels read these)."""

    def __call__(self, event: dict) -> None:
        print(json.dumps(event), flush=True)

    def close(self) -> None:
        pass


class Bar:
    """A tqdm bar on stderr; training events show the main losses in its postfix."""

    def __init__(self, description: str):
        self.description = description
        self.bar = None

    def __call__(self, event: dict) -> None:
        if event.get("event") != "progress":
            return
        total = event.get("total", 0)
        position = event.get("iteration", event.get("done", 0))
        if self.bar is None:
            self.bar = tqdm(
                total=total,
                initial=position - 1 if "iteration" in event else 0,
                desc=self.description,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.bar.update(position - self.bar.n)
        if "losses" in event:
            losses = event["losses"]
            self.bar.set_postfix(
                {k: f"{losses[k]:.3f}" for k in ("generator", "sim", "cyc") if k in losses}, refresh=False
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def reporter(kind: str, description: str):
    """``bar`` or ``jsonl``."""
    return JsonLines() if kind == "jsonl" else Bar(description)

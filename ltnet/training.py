"""The training loop: ``G_F``/``G_B`` and ``D`` updated alternately on (atlas, scan) pairs.

Deterministic on CPU for a given seed (scan order and initial weights come from
seeded generators whose states are saved with each checkpoint, so a resumed run
continues the same sequence). Mixed precision (bfloat16) on CUDA.
"""

import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ltnet.model_file import LTNetModel, save_model
from ltnet.nn.cycle import discriminator_loss, generator_terms, run_cycle, weighted_total


@dataclass
class TrainSettings:
    """What the loop does; stored in the model so a resumed run keeps it."""

    iterations: int = 2000
    learning_rate: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 100


class Stopped(Exception):
    """Training was asked to stop (SIGTERM/SIGINT); the last checkpoint was written."""


def train(
    model: LTNetModel,
    scans: list[np.ndarray],
    out,
    settings: TrainSettings,
    device: torch.device,
    progress: Callable[[dict], None] | None = None,
) -> LTNetModel:
    """Train ``model`` on ``scans`` (each ``(D, H, W)`` in [0, 1] on the model's grid) and write it to ``out``.

    Starts at ``model.iteration`` (0, or a resumed checkpoint's count) and runs up to
    ``settings.iterations``. Checkpoints every ``settings.checkpoint_every``
    iterations and at the end; on SIGTERM/SIGINT writes one and raises ``Stopped``.
    """
    nets = model.networks.to(device)
    nets.train()
    atlas = torch.from_numpy(model.atlas.image).float()[None, None].to(device)
    atlas_labels = torch.from_numpy(model.atlas.one_hot).float()[None].to(device)
    cohort = [torch.from_numpy(scan).float()[None, None] for scan in scans]
    weights = model.weights
    generator_params = list(nets.g_forward.parameters()) + (list(nets.g_backward.parameters()) if weights.needs_backward else [])
    optimizer_g = torch.optim.Adam(generator_params, lr=settings.learning_rate)
    optimizer_d = torch.optim.Adam(nets.discriminator.parameters(), lr=settings.learning_rate)
    order = torch.Generator().manual_seed(settings.seed)
    state = model.training
    if state.get("optimizer_g"):
        optimizer_g.load_state_dict(state["optimizer_g"])
        optimizer_d.load_state_dict(state["optimizer_d"])
        order.set_state(state["order_rng"])
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def checkpoint(iteration: int) -> None:
        model.training = {
            "iteration": iteration,
            "settings": asdict(settings),
            "optimizer_g": optimizer_g.state_dict(),
            "optimizer_d": optimizer_d.state_dict(),
            "order_rng": order.get_state(),
        }
        save_model(model, out)

    stop = _StopFlag()
    start_iteration = model.iteration
    started = time.monotonic()
    iteration = start_iteration
    with stop:
        while iteration < settings.iterations:
            scan = cohort[int(torch.randint(len(cohort), (1,), generator=order))].to(device, non_blocking=True)
            with autocast:
                cycle = run_cycle(nets, atlas, atlas_labels, scan, with_backward=weights.needs_backward)
                terms = generator_terms(nets, cycle, atlas, atlas_labels, scan, weights)
                total = weighted_total(terms, weights)
            optimizer_g.zero_grad(set_to_none=True)
            total.backward()
            optimizer_g.step()
            report = {name: value.detach() for name, value in terms.items()}
            report["generator"] = total.detach()
            if weights.gan > 0:
                with autocast:
                    d_loss = discriminator_loss(nets, scan, cycle.warped)
                optimizer_d.zero_grad(set_to_none=True)
                d_loss.backward()
                optimizer_d.step()
                report["discriminator"] = d_loss.detach()
            iteration += 1
            if progress is not None:
                elapsed = time.monotonic() - started
                done = iteration - start_iteration
                progress(
                    {
                        "event": "progress",
                        "iteration": iteration,
                        "total": settings.iterations,
                        "losses": {name: float(value) for name, value in report.items()},
                        "elapsed_s": round(elapsed, 3),
                        "eta_s": round(elapsed / done * (settings.iterations - iteration), 1),
                    }
                )
            if iteration % settings.checkpoint_every == 0 or iteration == settings.iterations or stop.requested:
                checkpoint(iteration)
            if stop.requested:
                raise Stopped(f"stopped at iteration {iteration}; the model file holds that checkpoint")
    if iteration == start_iteration:  # nothing to do: still write, so `out` exists
        checkpoint(iteration)
    return model


class _StopFlag:
    """Turns SIGTERM/SIGINT into a request the loop honours after the current iteration."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._request)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _request(self, signum, frame):
        self.requested = True

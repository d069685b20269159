"""The training loop: ``G_F``/``G_B`` and ``D`` updated alternately on batches of (atlas, scan) pairs.

Deterministic on CPU for a given seed (scan order and initial weights come from
seeded generators whose states are saved with each checkpoint, so a resumed run
continues the same sequence). Mixed precision (bfloat16) on CUDA. Under
``torchrun`` each rank trains on its own slots of the global batch
(``ltnet.sampling``), DDP averages the gradients, and only rank 0 writes
checkpoints and progress. Loss values stay on the device until a progress event
needs them (one transfer for all terms), so a GPU is never waited on per term.
"""

import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ltnet import augment, distributed, sampling, teach
from ltnet import qc as quality
from ltnet.device import mixed_precision, ready_for_training
from ltnet.errors import LTNetError
from ltnet.model_file import LTNetModel, save_model
from ltnet.nn.cycle import Cycle, CycleOptions, generator_terms, run_cycle, weighted_total
from ltnet.training_nets import TrainingNets

LR_SCHEDULES = ("constant", "cosine")


def scheduled_rate(schedule: str, learning_rate: float, done: float) -> float:
    """The learning rate once the share ``done`` (0 to 1) of a run is done: ``constant``: ``learning_rate``
    throughout; ``cosine``: from ``learning_rate`` down to 0 at the end along half a cosine."""
    if schedule == "constant":
        return learning_rate
    if schedule == "cosine":
        return learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; use one of {LR_SCHEDULES}")


AUGMENT_SEED_OFFSET = 1_000_003  # the augmentation draws its own stream, not the scan order's


@dataclass
class TrainSettings:
    """What the loop does; stored in the model so a resumed run keeps it.

    ``batch_size`` is the number of pairs per iteration on each process (the global
    batch is ``batch_size × world size``); ``checkpointing`` trades compute for
    memory by recomputing the U-Net activations in ``backward``; ``augment`` moves and
    re-contrasts each drawn scan at random (``ltnet.augment``); ``snapshot_every`` (0: never) keeps a copy of
    the model at each multiple of that many iterations beside the model file (``snapshot_path``), for accuracy
    against iterations.

    A run may have two stages (``ltnet train``'s recipe): ``iterations`` of registration, then ``teach_stage``
    iterations of teaching (``teaching_stage``; 0: none). ``teaching`` says which stage these settings run; each
    stage's schedule (warm-up, cosine) counts from its own start.
    """

    iterations: int = 2000
    learning_rate: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 100
    batch_size: int = 1
    checkpointing: bool = False
    warmup: float = 0.0
    lr_schedule: str = "constant"
    augment: bool = False
    teach_stage: int = 0
    teaching: bool = False
    snapshot_every: int = 0

    @property
    def run_end(self) -> int:
        """The iteration count at the end of the run (of both stages)."""
        return self.iterations + self.teach_stage

    @property
    def stage_start(self) -> int:
        return self.iterations if self.teaching else 0

    @property
    def stage_end(self) -> int:
        return self.run_end if self.teaching else self.iterations

    def learning_rate_at(self, iteration: int) -> float:
        """Adam's learning rate for the step after ``iteration`` steps.

        ``constant``: ``learning_rate`` throughout; ``cosine``: from ``learning_rate``
        down to 0 at the last iteration along half a cosine.
        """
        done = (iteration - self.stage_start) / max(1, self.stage_end - self.stage_start)
        return scheduled_rate(self.lr_schedule, self.learning_rate, done)

    def ramp(self, iteration: int) -> float:
        """Factor on the adversarial weight and on the cycle-to-``G_F`` coupling (times ``LossWeights.coupling``)
        at ``iteration``.

        Ours (the paper states no schedule): 0 during the first ``warmup`` share of the
        iterations, so ``G_F`` first learns to register while ``G_B`` learns to invert it,
        then rising linearly to 1 at the last iteration.
        """
        if self.warmup <= 0.0:
            return 1.0
        start = self.stage_start + self.warmup * (self.stage_end - self.stage_start)
        if iteration < start:
            return 0.0
        return min(1.0, (iteration - start + 1) / max(1.0, self.stage_end - start))


class Stopped(Exception):
    """Training was asked to stop (SIGTERM/SIGINT); the last checkpoint was written."""


def check_losses(losses: dict[str, float], iteration: int, out, checkpoint_iteration: int) -> None:
    """Raise ``LTNetError`` when a loss is not finite or the similarity leaves LNCC's range [-1, 0]:
    the networks would go on learning nothing (as GPU training did while LNCC ran in bfloat16).
    ``checkpoint_iteration``: that of the last checkpoint, if ``out`` holds one."""
    broken = {name: value for name, value in losses.items() if not math.isfinite(value)}
    if losses.get("sim", 0.0) < -1.0 - 1e-3:
        broken["sim"] = losses["sim"]
    if broken:
        terms = ", ".join(f"{name} = {value:.4g}" for name, value in broken.items())
        raise LTNetError(
            f"{out}: training broke down numerically at iteration {iteration} "
            f"({terms}; the similarity lies in [-1, 0]); "
            + (
                f"{out} keeps the checkpoint of iteration {checkpoint_iteration}. "
                if Path(out).is_file()
                else "no model was written. "
            )
            + "Check the scans for NaN values, lower --lr, or try --device cpu."
        )


def train(
    model: LTNetModel,
    scans: list[np.ndarray | None],
    out,
    settings: TrainSettings,
    device: torch.device,
    progress: Callable[[dict], None] | None = None,
    ranks: distributed.Ranks | None = None,
) -> LTNetModel:
    """Train ``model`` on ``scans`` (each ``(D, H, W)`` in [0, 1] on the model's grid) and write it to ``out``.

    Starts at ``model.iteration`` (0, or a resumed checkpoint's count) and runs up to
    ``settings.stage_end``. Checkpoints every ``settings.checkpoint_every`` (and ``snapshot_every``)
    iterations and at the end; on SIGTERM/SIGINT writes one and raises ``Stopped``.
    Under ``torchrun`` (``ranks`` of an open ``distributed.session``) a scan this rank
    never draws (``sampling.needed_scans``) may be None; only rank 0 writes ``out`` and
    calls ``progress``; without ``ranks``, this is the only process.
    """
    ranks = ranks if ranks is not None else distributed.Ranks()
    nets = ready_for_training(model.networks, device)
    weights = model.weights
    batch = settings.batch_size
    atlas = torch.from_numpy(model.atlas.image).float()[None, None].to(device).expand(batch, -1, -1, -1, -1)
    atlas_labels = torch.from_numpy(model.atlas.one_hot).float()[None].to(device).expand(batch, -1, -1, -1, -1)
    pin = device.type == "cuda"
    cohort = [None if scan is None else _as_tensor(scan, pin) for scan in scans]
    shards = sampling.slot_shards(len(cohort), batch * ranks.world_size)
    my_slots = sampling.rank_slots(ranks.rank, batch)
    parallel = TrainingNets(nets, device, weights.needs_backward, settings.checkpointing)
    generator_params = list(nets.g_forward.parameters()) + (
        list(nets.g_backward.parameters()) if weights.needs_backward else []
    )
    optimizer_g = torch.optim.Adam(generator_params, lr=settings.learning_rate)
    optimizer_d = torch.optim.Adam(nets.discriminator.parameters(), lr=settings.learning_rate)
    order = torch.Generator().manual_seed(settings.seed)
    augmentation = augment.Augmentation() if settings.augment else None
    augment_draws = torch.Generator().manual_seed(settings.seed + AUGMENT_SEED_OFFSET)
    refined_fields = teach.RefinedFields(nets.g_forward, weights, atlas[:1]) if weights.teach > 0 else None
    state = model.training
    if state.get("optimizer_g"):
        optimizer_g.load_state_dict(state["optimizer_g"])
        optimizer_d.load_state_dict(state["optimizer_d"])
        order.set_state(state["order_rng"])
        if state.get("augment_rng") is not None:
            augment_draws.set_state(state["augment_rng"])
    autocast = mixed_precision(device)
    report_every_s = 1.0 if device.type == "cuda" else 0.0  # CPU: every iteration (reading a loss costs nothing)

    def checkpoint(iteration: int, snapshot: bool = True) -> None:
        if not ranks.is_main:
            return
        model.reference_lncc, model.reference_label_lncc = quality.reference_lncc(
            nets, atlas[:1], atlas_labels[:1], [scan for scan in cohort if scan is not None]
        )
        model.training = {
            "iteration": iteration,
            "settings": asdict(settings),
            "optimizer_g": optimizer_g.state_dict(),
            "optimizer_d": optimizer_d.state_dict(),
            "order_rng": order.get_state(),
            "augment_rng": augment_draws.get_state(),
        }
        save_model(model, out)
        if snapshot and settings.snapshot_every and iteration % settings.snapshot_every == 0:
            save_model(model, snapshot_path(out, iteration))

    stop = StopFlag()
    start_iteration = model.iteration
    started = time.monotonic()
    last_report = -float("inf")
    iteration = start_iteration
    with stop:
        while iteration < settings.stage_end:
            drawn = sampling.draw(order, shards)
            scan = torch.cat([cohort[drawn[slot]] for slot in my_slots]).to(device, non_blocking=True)
            if augmentation is not None:  # drawn for every slot of the global batch, so ranks and resumes agree
                scan = augment.apply(
                    scan, augmentation.draw(augment_draws, len(shards))[my_slots.start : my_slots.stop]
                )
            ramp = settings.ramp(iteration)
            rate = settings.learning_rate_at(iteration)
            for optimizer in (optimizer_g, optimizer_d):
                for group in optimizer.param_groups:
                    group["lr"] = rate
            now_weights = replace(weights, gan=weights.gan * ramp)
            if refined_fields is not None:  # before the step: refining does not touch the networks' gradients
                refined = torch.cat([refined_fields(drawn[slot], scan[i : i + 1]) for i, slot in enumerate(my_slots)])
            with autocast:
                cycle = run_cycle(
                    parallel,
                    atlas,
                    atlas_labels,
                    scan,
                    with_backward=weights.needs_backward,
                    coupling=ramp * weights.coupling,
                    options=model.cycle_options,
                )
                terms = batch_mean_terms(
                    parallel, cycle, atlas, atlas_labels, scan, now_weights, model.cycle_options, model.grid.spacing
                )
                if refined_fields is not None:
                    terms["teach"] = teach.teach_term(
                        cycle.forward, refined, teach.label_weights(atlas_labels, refined)
                    )
                total = weighted_total(terms, now_weights)
            optimizer_g.zero_grad(set_to_none=True)
            total.backward()
            optimizer_g.step()
            report = {name: value.detach() for name, value in terms.items()}
            report["generator"] = total.detach()
            if weights.gan > 0:
                with autocast:
                    d_loss = parallel.discriminator_loss(scan, cycle.warped)
                optimizer_d.zero_grad(set_to_none=True)
                d_loss.backward()
                optimizer_d.step()
                report["discriminator"] = d_loss.detach()
            iteration += 1
            stopping = distributed.any_rank(stop.requested) if ranks.parallel else stop.requested
            now = time.monotonic()
            if now - last_report >= report_every_s or iteration == settings.stage_end or stopping:
                last_report = now
                event = progress_event(report, iteration, settings.run_end, now - started, iteration - start_iteration)
                check_losses(event["losses"], iteration, out, model.iteration)
                if progress is not None and ranks.is_main:
                    progress(event)
            if iteration % settings.checkpoint_every == 0 or iteration == settings.stage_end or stopping:
                checkpoint(iteration)
            elif settings.snapshot_every and iteration % settings.snapshot_every == 0:
                checkpoint(iteration)  # a snapshot is the checkpoint of its iteration too
            if stopping:
                raise Stopped(f"stopped at iteration {iteration}; the model file holds that checkpoint")
        # asked for during the last iteration, which wrote its checkpoint: no stage may follow (on every rank alike)
        if distributed.any_rank(stop.requested) if ranks.parallel else stop.requested:
            raise Stopped(f"stopped at iteration {iteration}; the model file holds that checkpoint")
    if iteration == start_iteration:  # nothing to do: still write, so `out` exists
        checkpoint(iteration, snapshot=False)
    model.training["iteration"] = iteration
    return model


def snapshot_path(out, iteration: int) -> Path:
    """Where a run writing ``out`` keeps its model at ``iteration`` (``TrainSettings.snapshot_every``):
    ``model.pt`` -> ``model_it2500.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_it{iteration}{out.suffix}")


#: The teaching stage of ``ltnet train``'s recipe: ``G_F`` taught by its own refined fields (``ltnet.teach``) with
#: this weight, at this learning rate, with this warm-up share: the fine-tuning measured best on the hippocampus
#: benchmark (docs/TUNING.md, "Teaching where the labels go").
TEACH_STAGE = {"weight": 10.0, "learning_rate": 1e-4, "warmup": 0.5}


def teaching_stage(model: LTNetModel, settings: TrainSettings) -> TrainSettings:
    """Turn ``model``, at the end of the stage ``settings`` describe, to the teaching stage that follows: the teach
    weight on and fresh optimizers (the iteration count goes on). Returns that stage's settings."""
    model.weights = replace(model.weights, teach=TEACH_STAGE["weight"])
    model.training = {"iteration": model.iteration}
    return replace(
        settings,
        learning_rate=TEACH_STAGE["learning_rate"],
        warmup=TEACH_STAGE["warmup"],
        lr_schedule="constant",
        augment=False,
        teaching=True,
    )


def batch_mean_terms(
    nets,
    cycle: Cycle,
    atlas,
    atlas_labels,
    scans,
    weights,
    options: CycleOptions | None = None,
    spacing_mm: float | None = None,
) -> dict[str, torch.Tensor]:
    """Each generator term as the mean over the batch of its value per pair (``generator_terms``' arguments).

    Per pair because soft Dice is not a mean over voxels; so a batch of ``B`` on one
    process gives the same loss (and gradient) as ``B`` processes with one pair each.
    """
    extra = (options or CycleOptions(), spacing_mm)
    if len(scans) == 1:
        return generator_terms(nets, cycle, atlas, atlas_labels, scans, weights, *extra)
    per_pair = []
    for b in range(len(scans)):
        pair = Cycle(**{k: v[b : b + 1] if isinstance(v, torch.Tensor) else v for k, v in vars(cycle).items()})
        per_pair.append(
            generator_terms(nets, pair, atlas[b : b + 1], atlas_labels[b : b + 1], scans[b : b + 1], weights, *extra)
        )
    return {name: torch.stack([terms[name] for terms in per_pair]).mean() for name in per_pair[0]}


def progress_event(report: dict, iteration: int, total: int, elapsed: float, done: int) -> dict:
    """The jsonl progress line of ``iteration`` of ``total`` (``done`` in this run, in ``elapsed`` s): losses, ETA."""
    values = torch.stack([value.float() for value in report.values()]).tolist()  # one device-to-host copy
    return {
        "event": "progress",
        "iteration": iteration,
        "total": total,
        "losses": dict(zip(report, values)),
        "elapsed_s": round(elapsed, 3),
        "eta_s": round(elapsed / done * (total - iteration), 1),
    }


def _as_tensor(scan: np.ndarray, pin: bool) -> torch.Tensor:
    """``(D, H, W)`` array -> ``(1, 1, D, H, W)`` float tensor, in pinned memory when it goes to a GPU."""
    tensor = torch.from_numpy(scan).float()[None, None]
    return tensor.pin_memory() if pin else tensor


class StopFlag:
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

"""Distillation: train a segmentation network (``ltnet.segmenter``) on labels the registration makes for the cohort.

One-shot segmentation methods that learn from a registration (Zhao et al., CVPR 2019) train a segmenter on
registration-made examples, which averages the registration's errors out over the cohort. Here every cohort scan
``s`` (pre-aligned, on the network grid, as ``G_F`` sees it) gets its forward field from the model (``G_F``'s,
or refined for ``refine_steps`` steps, ``ltnet.refine``), computed once at the start, and gives two examples:

- the scan with the atlas labels warped onto it, ``ū_s`` (soft: the warped one-hot channels);
- the atlas image warped by the same field with the same labels: an image whose labels are exactly right;

and the atlas itself with its labels is one more. Each iteration draws one example (a seeded generator) and, with
``augment``, moves it by a small random affine map and changes its contrast (``ltnet.augment``; the labels move
with the image). The loss is the cross-entropy against the soft labels plus the foreground soft Dice loss; Adam's
learning rate is constant or decays along half a cosine (``lr_schedule``).

Deterministic on CPU for a seed (the draws' generator states are saved with each checkpoint, so a resumed run
continues the same sequence); SIGTERM/SIGINT write a checkpoint and raise ``ltnet.training.Stopped``.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ltnet import augment
from ltnet.model_file import LTNetModel, save_model
from ltnet.nn.losses import foreground_dice_loss
from ltnet.nn.warp import warp
from ltnet.refine import refine
from ltnet.segmenter import Segmenter
from ltnet.training import AUGMENT_SEED_OFFSET, StopFlag, Stopped, check_losses, progress_event, scheduled_rate

KINDS = ("scan", "warped_atlas", "atlas")  # what each example's image is (see the module's docstring)
#: The segmenter labels at the network grid; one coarser than this many times the atlas's finest spacing loses what
#: the registration's labels keep: on the IBSR brains at 4 mm (about 4 times the atlas's spacing) the reference labels
#: themselves, carried onto that grid and back, scored no better than the refined registration (docs/BENCHMARKS.md,
#: "Distillation, IBSR18 brain MRI").
COARSE_GRID_RATIO = 2.0


@dataclass
class DistillSettings:
    """What the loop does; stored with the segmenter so a resumed run keeps it."""

    iterations: int = 2000
    learning_rate: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 100
    refine_steps: int = 3
    augment: bool = True
    lr_schedule: str = "constant"

    def learning_rate_at(self, iteration: int) -> float:
        """Adam's learning rate for the step after ``iteration`` steps (``lr_schedule``, over ``iterations``)."""
        return scheduled_rate(self.lr_schedule, self.learning_rate, iteration / max(1, self.iterations))


@dataclass
class Examples:
    """Training examples on the network grid: ``images[i]`` ``(1, 1, D, H, W)`` in [0, 1] with soft labels
    ``labels[label_of[i]]`` ``(1, K, D, H, W)`` (channels sum to 1); ``kinds[i]`` is one of ``KINDS``."""

    images: list[torch.Tensor]
    labels: list[torch.Tensor]
    label_of: list[int]
    kinds: list[str]


def make_examples(model: LTNetModel, scans: list[np.ndarray], refine_steps: int, device: torch.device) -> Examples:
    """The examples of ``scans`` (each ``(D, H, W)`` in [0, 1] on the model's grid) from the model's registration;
    kept on the CPU: ``3K + 2`` float32 grid volumes per scan (2.8 MB per scan at 40x48x40 with 3 labels)."""
    g_forward = model.networks.g_forward.to(device).eval()
    atlas = torch.from_numpy(model.atlas.image).float()[None, None].to(device)
    one_hot = torch.from_numpy(model.atlas.one_hot).float()[None].to(device)
    examples = Examples([atlas.cpu()], [one_hot.cpu()], [0], ["atlas"])
    for scan in scans:
        scan_t = torch.from_numpy(scan).float()[None, None].to(device)
        if refine_steps > 0:
            field = refine(g_forward, model.weights, atlas, scan_t, refine_steps)
        else:
            with torch.no_grad():
                field = g_forward(atlas, scan_t)
        with torch.no_grad():
            warped_labels = warp(one_hot, field).clamp(0.0, 1.0)
            warped_labels = warped_labels / warped_labels.sum(1, keepdim=True).clamp_min(1e-6)
            examples.labels.append(warped_labels.cpu())
            for kind, image in (("scan", scan_t), ("warped_atlas", warp(atlas, field))):
                examples.images.append(image.cpu())
                examples.label_of.append(len(examples.labels) - 1)
                examples.kinds.append(kind)
    return examples


def coarse_grid_note(model: LTNetModel) -> str | None:
    """What to tell a user distilling ``model`` when its network grid is more than ``COARSE_GRID_RATIO`` times the
    atlas's finest spacing (the segmenter then labels more coarsely than the registration's labels, which follow the
    field at the atlas's own resolution); None otherwise, and for a model that keeps no atlas labels at their own
    resolution."""
    if model.atlas.channels is None:
        return None
    atlas_spacing = min(model.atlas.channels.GetSpacing())
    grid_spacing = model.grid.spacing
    if grid_spacing <= COARSE_GRID_RATIO * atlas_spacing:
        return None
    return (
        f"the segmentation network labels on the model's network grid, at {grid_spacing:.3g} mm, "
        f"{grid_spacing / atlas_spacing:.1f} times the atlas's finest spacing ({atlas_spacing:.3g} mm), so it cannot "
        f"draw structures much thinner than {grid_spacing:.3g} mm, which the registration's labels keep. For such "
        "structures `ltnet transfer --refine 3` with the source model may label better (docs/BENCHMARKS.md, "
        '"Distillation, IBSR18 brain MRI"); a source model trained on a finer --grid gives a finer segmenter.'
    )


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``ce``: cross-entropy of ``logits`` ``(B, K, D, H, W)`` against soft ``labels`` of the same shape (mean over
    voxels); ``dice``: the foreground soft Dice loss of their softmax (``ltnet.nn.losses.foreground_dice_loss``)."""
    log_p = F.log_softmax(logits.float(), dim=1)
    return {"ce": -(labels * log_p).sum(1).mean(), "dice": foreground_dice_loss(log_p.exp(), labels)}


def distill(
    model: LTNetModel,
    examples: Examples,
    out,
    settings: DistillSettings,
    device: torch.device,
    progress: Callable[[dict], None] | None = None,
    cpu_start: float | None = None,
) -> LTNetModel:
    """Train ``model.segmenter`` on ``examples`` (``make_examples``) and write ``model`` to ``out``.

    Starts at the segmenter's iteration (0, or a resumed checkpoint's) and runs up to ``settings.iterations``.
    Checkpoints every ``settings.checkpoint_every`` iterations and at the end; on SIGTERM/SIGINT writes one and
    raises ``Stopped``. Each checkpoint records ``cpu_seconds``, the process CPU time (all threads) the
    distillation has cost so far, over every run that resumed it: this run's counts from ``cpu_start`` (a
    ``time.process_time()`` reading when it began its work, such as making the examples; default: now).
    """
    cpu_start = time.process_time() if cpu_start is None else cpu_start
    segmenter: Segmenter = model.segmenter
    network = segmenter.network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    order = torch.Generator().manual_seed(settings.seed)
    augmentation = augment.Augmentation() if settings.augment else None
    augment_draws = torch.Generator().manual_seed(settings.seed + AUGMENT_SEED_OFFSET)
    state = segmenter.training
    cpu_before = float(state.get("cpu_seconds", 0.0))
    if state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
        order.set_state(state["order_rng"])
        augment_draws.set_state(state["augment_rng"])

    def checkpoint(iteration: int) -> None:
        segmenter.training = {
            "iteration": iteration,
            "settings": asdict(settings),
            "examples": len(examples.images),
            "optimizer": optimizer.state_dict(),
            "order_rng": order.get_state(),
            "augment_rng": augment_draws.get_state(),
            "cpu_seconds": cpu_before + time.process_time() - cpu_start,
        }
        save_model(model, out)

    stop = StopFlag()
    start_iteration = iteration = segmenter.iteration
    started = time.monotonic()
    with stop:
        while iteration < settings.iterations:
            network.train()
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate_at(iteration)
            drawn = int(torch.randint(len(examples.images), (1,), generator=order))
            image = examples.images[drawn].to(device)
            labels = examples.labels[examples.label_of[drawn]].to(device)
            if augmentation is not None:
                parameters = augmentation.draw(augment_draws, 1)
                image = augment.apply(image, parameters)
                parameters[:, 9] = 1.0  # the labels move with the image; only the image changes contrast
                labels = augment.apply(labels, parameters)
            terms = segmentation_loss(network(image), labels)
            total = terms["ce"] + terms["dice"]
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            iteration += 1
            report = {name: value.detach() for name, value in terms.items()}
            report["loss"] = total.detach()
            event = progress_event(
                report, iteration, settings.iterations, time.monotonic() - started, iteration - start_iteration
            )
            check_losses(event["losses"], iteration, out, segmenter.iteration)
            if progress is not None:
                progress(event)
            if iteration % settings.checkpoint_every == 0 or iteration == settings.iterations or stop.requested:
                checkpoint(iteration)
            if stop.requested:
                raise Stopped(f"stopped at iteration {iteration}; the model file holds that checkpoint")
    if iteration == start_iteration:  # nothing to do: still write, so `out` exists
        checkpoint(iteration)
    return model

"""Label transfer: atlas labels onto a scan's own grid, with the cycle-consistency checks.

Points flow: scan point ``x`` -> (inverse affine pre-alignment) -> network grid
point ``p`` -> ``p + Δ_F(p)`` in the atlas -> atlas labels, at the atlas's own
resolution (``ltnet.scan_labels``). Everything the result holds lies on the
scan's own grid (origin, spacing, direction), except the reconstructions, which
lie on the atlas's network grid. A refined field can lie on a finer grid over
the same box (``ltnet.refine.refinement_grid``); the labels then follow it there.
"""

import functools
import math
from dataclasses import dataclass

import SimpleITK as sitk
import torch

from ltnet import qc as quality
from ltnet.data.grid import REFINE_MAX_VOXELS, NetworkGrid, argmax_labels, resample
from ltnet.data.intensity import normalise
from ltnet.data.prepare import PreparedScan, prepare_scan
from ltnet.device import inference_precision, ready_for_inference
from ltnet.fast_inference import inference_networks
from ltnet.model_file import LTNetModel
from ltnet.nn.cycle import run_cycle
from ltnet.nn.warp import field_on_grid, warp
from ltnet.realign import keep_best_alignment
from ltnet.refine import refine, refinement_grid
from ltnet.scan_labels import labels_on_scan
from ltnet.segmenter import labels_on_target


@dataclass
class TransferResult:
    """What one transfer gives; all SimpleITK images (LPS). None: not asked for (see ``transfer``)."""

    labels: sitk.Image  # scan grid, atlas label values
    qc: dict | None = None
    warped_atlas: sitk.Image | None = None  # scan grid, ū in [0, 1]
    reconstructed_atlas: sitk.Image | None = None  # network grid, l̄
    reconstructed_labels: sitk.Image | None = None  # network grid, argmax l̄_s as label values
    field: sitk.Image | None = None  # scan grid, vector float64 mm: scan point x <-> atlas point x + field(x)
    jacobian: sitk.Image | None = None  # scan grid, determinant of the Jacobian of x -> x + field(x)
    inverse_consistency: sitk.Image | None = None  # scan grid, mm


def transfer(
    model: LTNetModel,
    target: sitk.Image,
    device="cpu",
    prealign: bool = True,
    refine_steps: int = 0,
    prepared: PreparedScan | None = None,
    qc: bool = True,
    extras: bool = True,
    on_stage=None,
    labels_on: sitk.Image | None = None,
    retry_failed: bool = True,
    qc_cycle: bool = True,
) -> TransferResult:
    """Transfer the atlas labels of ``model`` onto ``target`` (a 3-D image as read by ``ltnet.data.io.read_image``).

    ``refine_steps`` > 0 first fits the forward map to this target (``ltnet.refine``).
    A model with a segmenter (``ltnet distill``) takes the labels from it; the field, refined or not, then serves
    the QC and the ``extras`` only.
    ``qc`` runs the backward network and the quality checks; ``extras`` also makes the
    images behind them (the warped and reconstructed atlas, field, Jacobian and
    inverse-consistency maps). Without both, only ``G_F`` runs (faster: docs/BENCHMARKS.md, "Speed"), and for a
    distilled model without refinement only its segmenter.
    ``on_stage(stage, step, steps)``: called as each stage begins, for progress reports: ``prealign``
    (when ``prepared`` is not given), ``network``, ``refine`` (step k of ``refine_steps``), ``labels``, ``qc``.
    ``labels_on``: an image whose grid the labels are put on instead of ``target``'s (the same map, evaluated at its
    voxels: to compare the labels of two acquisitions of the same anatomy on one grid, for example); the other
    images stay on ``target``'s grid. ``retry_failed`` (with the pre-alignment and the QC on): a transfer whose
    verdict is "likely failed" is tried again from other pre-alignments and the best by QC score is kept, every try
    listed in its QC (``ltnet.realign``). ``qc_cycle=False`` (with ``qc``, without ``extras``): the QC without
    ``G_B``, its score and verdict from ``G_F``'s image match and folding alone, no cycle numbers (``ltnet.qc``);
    on a large grid it costs a fraction of the full QC.
    """
    if extras and not qc_cycle:
        raise ValueError("the extras images show the cycle: they need qc_cycle")
    if qc and not qc_cycle and not model.has_reference_match:
        raise ValueError("a QC without the cycle scores the match against the model's reference, which it lacks")
    device = torch.device(device)
    atlas = model.atlas
    stage = on_stage or (lambda name, step, steps: None)
    if prealign and qc and retry_failed:
        once = functools.partial(
            transfer,
            model,
            target,
            device,
            True,
            refine_steps,
            qc=qc,
            extras=extras,
            on_stage=on_stage,
            labels_on=labels_on,
            retry_failed=False,
            qc_cycle=qc_cycle,
        )

        def with_seed(seed: int) -> TransferResult:
            stage("prealign", 1, 1)
            return once(prepared=prepare_scan(target, atlas, True, seed))

        return keep_best_alignment(once(prepared=prepared), with_seed)
    if prepared is None:  # given when a batch already prepared it in a worker (ltnet.batch_transfer)
        stage("prealign", 1, 1)
        prepared = prepare_scan(target, atlas, prealign)
    nets = ready_for_inference(model.networks, device)
    passes = inference_networks(nets, device, math.prod(atlas.grid.size))  # G_F, G_B in OpenVINO where faster
    atlas_t = torch.from_numpy(atlas.image).float()[None, None].to(device)
    one_hot_t = torch.from_numpy(atlas.one_hot).float()[None].to(device)
    scan_t = torch.from_numpy(prepared.image).float()[None, None].to(device)
    # field: the forward map the labels follow, on field_grid (the network grid, or a finer one a refinement ran on)
    field_grid, field, forward, network_match = atlas.grid, None, None, None
    stage("network", 1, 1)
    if refine_steps > 0:
        field_grid = refinement_grid(atlas, target, REFINE_MAX_VOXELS.get(device.type, REFINE_MAX_VOXELS["cpu"]))
        finer = _pair_on_finer_grid(model, target, prepared, field_grid, device)
        with torch.no_grad():
            with inference_precision(device):
                start = passes.g_forward.unet_field(atlas_t, scan_t).float()
            if qc:  # the QC scores G_F's own prediction: the fit raises the match it would read (ltnet.qc)
                network = nets.g_forward.displacement(start)
                network_match = quality.image_match(scan_t, warp(atlas_t, network), warp(one_hot_t, network))
        field = refine(
            nets.g_forward,
            model.weights,
            atlas_t,
            scan_t,
            refine_steps,
            finer=finer,
            start=start,
            on_step=lambda k: stage("refine", k, refine_steps),
        )
        # the same map at the network grid's voxels, for G_B and the QC
        forward = field if finer is None else field_on_grid(field, 1.0 / finer[2], atlas.grid.size[::-1])
    cycle = None  # labels only: G_F's field (or the refined one), no warped images
    with torch.no_grad(), inference_precision(device):
        if qc or extras:
            cycle = run_cycle(passes, atlas_t, one_hot_t, scan_t, with_backward=qc_cycle, forward=forward)
            cycle = type(cycle)(**{k: v.float() if isinstance(v, torch.Tensor) else v for k, v in vars(cycle).items()})
        elif field is None and model.segmenter is None:  # a segmenter's labels need no field
            field = passes.g_forward(atlas_t, scan_t).float()
    grid = atlas.grid
    if field is None and cycle is not None:
        field = cycle.forward
    to_grid = prepared.to_scan.GetInverse()
    stage("labels", 1, 1)
    labels_grid = target if labels_on is None else labels_on
    if model.segmenter is None:
        labels = labels_on_scan(atlas.channels_sitk(), atlas.values, field[0], field_grid, labels_grid, to_grid)
    else:  # a distilled model: its segmentation network labels the scan on the grid (ltnet.distill)
        probabilities = model.segmenter.to(device).probabilities(scan_t)[0]
        labels = labels_on_target(probabilities, atlas.values, grid, labels_grid, to_grid)
    result = TransferResult(labels)
    if not (qc or extras):
        return result
    stage("qc", 1, 1)
    inverse_consistency = quality.inverse_consistency_mm(cycle, grid.spacing) if qc_cycle else None
    if qc:
        result.qc = quality.measure(
            cycle,
            atlas_t,
            one_hot_t,
            scan_t,
            inverse_consistency,
            atlas.labels,
            (model.reference_lncc, model.reference_label_lncc),
            field,
            network_match,
        )
        # the QC judges the registration; a distilled model's labels come from its segmenter, taught by such maps
        result.qc["labels_from"] = "registration" if model.segmenter is None else "segmentation network"
        if refine_steps > 0:  # what the refinement ran on, so a result can be reproduced and its cost understood
            result.qc["refinement"] = {
                "steps": refine_steps,
                "grid_size": list(field_grid.size),
                "spacing_mm": round(field_grid.spacing, 4),
            }
    if extras:
        to_atlas = sitk.CompositeTransform([field_grid.displacement_transform(field[0].cpu().numpy()), to_grid])
        reference = sitk.Image(target.GetSize(), sitk.sitkUInt8)
        reference.CopyInformation(target)
        result.field = sitk.TransformToDisplacementField(
            to_atlas,
            sitk.sitkVectorFloat64,
            target.GetSize(),
            target.GetOrigin(),
            target.GetSpacing(),
            target.GetDirection(),
        )
        result.warped_atlas = resample(atlas.image_sitk(), reference, to_atlas)
        result.reconstructed_atlas = grid.image_from_array(cycle.reconstructed[0, 0].cpu().numpy())
        result.reconstructed_labels = grid.image_from_array(
            argmax_labels(cycle.reconstructed_labels[0].cpu().numpy(), atlas.values)
        )
        result.jacobian = sitk.DisplacementFieldJacobianDeterminant(result.field)
        result.inverse_consistency = resample(
            grid.image_from_array(inverse_consistency.cpu().numpy()), reference, to_grid
        )
    return result


def _pair_on_finer_grid(
    model: LTNetModel, target: sitk.Image, prepared: PreparedScan, grid: NetworkGrid, device
) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """The atlas (at its own resolution) and the scan (pre-aligned) on ``grid``, finer than the network grid,
    ``(1, 1, D, H, W)`` each, and how many times finer (``refine``'s ``finer``); None when ``grid`` is the network
    grid."""
    if grid == model.grid:
        return None
    reference = grid.reference()
    images = (resample(model.atlas.source_image, reference), resample(normalise(target), reference, prepared.to_scan))
    atlas, scan = (torch.from_numpy(sitk.GetArrayFromImage(image))[None, None].to(device) for image in images)
    return atlas, scan, model.grid.spacing / grid.spacing

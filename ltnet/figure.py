"""A figure a person can read: atlas, target with transferred labels as outlines, and the image cycle error.

matplotlib is optional (``pip install 'ltnet[figure]'``); :func:`missing_figure_support` says whether it is there.
"""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ltnet.data.labels import LabelInfo

FIGURE_HINT = "pip install 'ltnet[figure]'"
# Measured with the bundled model: the image cycle error mean |l - l̄| (intensities scaled to 0..1) is 0.024 to 0.028
# on the 10 bundled sample scans; a left-right mirrored scan, whose labels land on the wrong side, gives 0.039.
CYCLE_ERROR_NOTE = (
    "Image cycle error |l - l̄|: the atlas mapped to the scan and back, against itself (intensities 0..1). "
    "Good: dark, speckled, no bright patch on the outlined structures; the bundled model's mean is 0.024-0.028 "
    "on the 10 sample scans, a mirrored scan gives 0.039. The QC score and verdict, not this map alone, "
    "say whether the labels fit: OK, check (look at it first) or likely failed."
)
_PLANES = ("sagittal", "coronal", "axial")  # the plane normal to L, P and S (ITK's LPS axes)


def missing_figure_support() -> str | None:
    """None when the figure can be drawn, else one line saying how to get it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return f"no figure: matplotlib is not installed ({FIGURE_HINT} adds it)"
    return None


def slice_name(image: sitk.Image, index: int) -> str:
    """``"axial slice 17 of 36"``: the plane of the image's third voxel axis (nearest of L, P, S) and the index."""
    normal = np.abs(np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)[:, 2])
    return f"{_PLANES[int(np.argmax(normal))]} slice {index} of {image.GetSize()[2]}"


def row_title(name: str, dice: dict[int, float] | None, qc: dict | None) -> str:
    """One target's heading: its name, Dice per label and mean (when scored), QC verdict and score."""
    parts = [name]
    if dice:
        values = list(dice.values())
        per_label = " / ".join(f"{v:.2f}" for v in values)
        parts.append(f"Dice {per_label} (mean {np.mean(values):.2f})")
    if qc:
        parts.append(f"QC verdict {qc['verdict']} (score {qc['score']:.2f})")
    return ", ".join(parts)


def build_figure(rows: list[dict], labels: list[LabelInfo]):
    """A matplotlib Figure with one row per target and a legend of the atlas labels.

    Each row dict holds SimpleITK images ``atlas``, ``atlas_labels`` (network grid), ``target``, ``labels``
    (target grid) and ``cycle_error`` (``|l - l̄|`` on the network grid), the target's ``name``, and optionally
    ``dice`` ({label value: Dice}) and ``qc`` (the QC record). Slices are taken where the labels are largest.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = {label.value: label.color for label in labels}
    slices = [_largest_label_slice(row["atlas_labels"]) for row in rows]
    errors = [sitk.GetArrayViewFromImage(row["cycle_error"])[index] for row, index in zip(rows, slices)]
    top = max([0.2] + [float(error.max()) for error in errors])  # one scale for every row, so rows compare
    fig = plt.figure(figsize=(10, 3.4 * len(rows) + 1.2), layout="constrained")
    subfigures = np.atleast_1d(fig.subfigures(len(rows), 1))
    for row, subfigure, atlas_index, error in zip(rows, subfigures, slices, errors):
        ax = subfigure.subplots(1, 3)
        subfigure.suptitle(row_title(row["name"], row.get("dice"), row.get("qc")), fontsize=10, fontweight="bold")
        target_index = _largest_label_slice(row["labels"])
        _show(ax[0], row["atlas"], atlas_index, row["atlas_labels"], colors)
        ax[0].set_title(f"atlas, {slice_name(row['atlas'], atlas_index)}", fontsize=8)
        _show(ax[1], row["target"], target_index, row["labels"], colors)
        ax[1].set_title(f"transferred labels, {slice_name(row['target'], target_index)}", fontsize=8)
        shown = ax[2].imshow(error, cmap="magma", vmin=0, vmax=top)
        mean = f" (mean {row['qc']['image_cycle_error']:.3f})" if row.get("qc") else ""
        ax[2].set_title(f"image cycle error on the atlas slice{mean}", fontsize=8)
        ax[2].axis("off")
        bar = subfigure.colorbar(shown, ax=ax[2], fraction=0.046)
        bar.set_label("|l - l̄| (intensity 0..1)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    legend = [Patch(facecolor="none", edgecolor=label.color, linewidth=2, label=label.name) for label in labels]
    fig.legend(
        handles=legend,
        loc="outside upper center",
        ncol=max(1, len(legend)),
        fontsize=9,
        frameon=False,
        title="atlas labels (Dice against the reference labels is given in this order)",
        title_fontsize=8,
    )
    fig.supxlabel(CYCLE_ERROR_NOTE, fontsize=7.5, wrap=True)
    return fig


def transfer_figure(path, rows: list[dict], labels: list[LabelInfo]) -> None:
    """Write :func:`build_figure` as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = build_figure(rows, labels)
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)


def _largest_label_slice(labels: sitk.Image) -> int:
    array = sitk.GetArrayViewFromImage(labels)
    return int(np.argmax((array > 0).reshape(array.shape[0], -1).sum(axis=1)))


def _show(ax, image: sitk.Image, index: int, labels: sitk.Image, colors: dict) -> None:
    ax.imshow(sitk.GetArrayViewFromImage(image)[index], cmap="gray")
    label_slice = sitk.GetArrayViewFromImage(labels)[index]
    for value in [int(v) for v in np.unique(label_slice) if v]:
        ax.contour(label_slice == value, levels=[0.5], colors=[colors.get(value, (1.0, 0.4, 0.2))], linewidths=1.2)
    ax.axis("off")

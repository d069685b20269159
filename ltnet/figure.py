"""A figure a person can read: atlas, target with transferred labels as outlines, and the cycle error."""

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def transfer_figure(path, rows: list[dict], colors: dict[int, tuple] | None = None) -> None:
    """Write a PNG with one row per target.

    Each row dict holds SimpleITK images ``atlas``, ``atlas_labels`` (network grid),
    ``target``, ``labels`` (target grid), ``cycle_error`` (``|l - l̄|`` on the
    network grid), and ``title``. Slices are taken where the labels are largest.
    ``colors`` maps label values to RGB (0..1), so a structure has one color in every panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3.1 * len(rows)), squeeze=False)
    for row, ax in zip(rows, axes):
        atlas_slice = _largest_label_slice(row["atlas_labels"])
        target_slice = _largest_label_slice(row["labels"])
        _show(ax[0], row["atlas"], atlas_slice, row["atlas_labels"], "atlas and its labels", colors or {})
        _show(ax[1], row["target"], target_slice, row["labels"], f"{row['title']}: transferred labels", colors or {})
        error = sitk.GetArrayViewFromImage(row["cycle_error"])[atlas_slice]
        shown = ax[2].imshow(error, cmap="magma", vmin=0, vmax=max(0.2, float(error.max())))
        ax[2].set_title("image cycle error |l - l̄|", fontsize=9)
        ax[2].axis("off")
        fig.colorbar(shown, ax=ax[2], fraction=0.046)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)


def _largest_label_slice(labels: sitk.Image) -> int:
    array = sitk.GetArrayViewFromImage(labels)
    return int(np.argmax((array > 0).reshape(array.shape[0], -1).sum(axis=1)))


def _show(ax, image: sitk.Image, index: int, labels: sitk.Image, title: str, colors: dict) -> None:
    ax.imshow(sitk.GetArrayViewFromImage(image)[index], cmap="gray")
    label_slice = sitk.GetArrayViewFromImage(labels)[index]
    for value in [int(v) for v in np.unique(label_slice) if v]:
        ax.contour(label_slice == value, levels=[0.5], colors=[colors.get(value, (1.0, 0.4, 0.2))], linewidths=1.2)
    ax.set_title(title, fontsize=9)
    ax.axis("off")

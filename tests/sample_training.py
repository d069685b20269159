"""The ``ltnet train`` arguments for a run on the bundled sample atlas and scans."""

from ltnet import sample


def train_argv(
    out,
    *flags,
    iterations=None,
    grid=None,
    progress=None,
    images=None,
    atlas_image=None,
    atlas_labels=None,
    teach_stage=0,
) -> list[str]:
    """``train`` on the CPU into ``out``, every item a string, for ``main()`` or after ``python -m ltnet``.

    ``images``: the scans (default the first sample training scan); ``atlas_image``, ``atlas_labels``: default the
    bundled atlas. ``iterations``, ``grid`` (X, Y, Z in voxels) and ``progress`` are given only where set (otherwise
    the command's defaults hold); ``teach_stage``: the teaching stage's iterations, 0 by default to keep tests
    short (None: the command's default); ``flags`` follow last, so a flag repeated there wins.
    """
    argv = [
        "train",
        "--atlas-image",
        atlas_image or sample.atlas_image_path(),
        "--atlas-labels",
        atlas_labels or sample.atlas_labels_path(),
        "--images",
        *(images or [sample.training_scan_paths()[0]]),
        "--out",
        out,
        "--device",
        "cpu",
    ]
    if iterations is not None:
        argv += ["--iterations", iterations]
    if grid is not None:
        argv += ["--grid", *grid]
    if progress is not None:
        argv += ["--progress", progress]
    if teach_stage is not None:
        argv += ["--teach-stage", teach_stage]
    return [str(a) for a in [*argv, *flags]]

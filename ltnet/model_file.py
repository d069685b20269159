"""The model file: weights, configuration, grid, atlas and versions in one ``torch.save`` dict.

Only tensors, numbers, strings, lists and dicts are stored, so it loads with
``torch.load(weights_only=True)``: nothing read from the file is executed.
Writes are atomic (a temporary file, then a rename), so a killed run never
leaves a broken model file.
"""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import monai
import numpy as np
import SimpleITK as sitk
import torch

import ltnet
from ltnet.data.grid import NetworkGrid
from ltnet.data.labels import LabelInfo
from ltnet.data.prealign import FIXED_IMAGES
from ltnet.data.prepare import Atlas
from ltnet.errors import LTNetError
from ltnet.nn.cycle import CycleOptions
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import LTNetNetworks, NetworkConfig
from ltnet.segmenter import Segmenter

FORMAT = "ltnet-model"
FORMAT_VERSION = 1

_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp's own 0o600 would hide results from colleagues


@dataclass
class LTNetModel:
    """A model in memory: the networks, the atlas on its grid, and how it was trained."""

    networks: LTNetNetworks
    atlas: Atlas
    weights: LossWeights
    training: dict = field(
        default_factory=dict
    )  # iteration, optimizer and RNG states, settings; empty for a bare model
    reference_lncc: float | None = (
        None  # typical image match on its training scans, whole grid (ltnet.qc.reference_lncc)
    )
    reference_label_lncc: float | None = None  # the same over the transferred labels, what the QC score uses
    cycle_options: CycleOptions = CycleOptions()  # how the cycle terms are computed (older files: from_dict)
    segmenter: Segmenter | None = None  # a distilled segmentation network (`ltnet distill`); labels come from it

    @property
    def labels(self) -> list[LabelInfo]:
        return self.atlas.labels

    @property
    def grid(self) -> NetworkGrid:
        return self.atlas.grid

    @property
    def atlas_image(self) -> sitk.Image:
        return self.atlas.image_sitk()

    @property
    def atlas_labels(self) -> sitk.Image:
        return self.atlas.labels_sitk()

    @property
    def iteration(self) -> int:
        return int(self.training.get("iteration", 0))

    @property
    def has_reference_match(self) -> bool:
        """Whether the file holds the typical match a QC score is read against (not in files of an early LTNet);
        a QC without the cycle needs it."""
        return self.reference_lncc is not None or self.reference_label_lncc is not None


def save_model(model: LTNetModel, path) -> None:
    """Write ``model`` to ``path`` atomically."""
    path = Path(path)
    atlas = model.atlas
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"ltnet": ltnet.__version__, "torch": str(torch.__version__), "monai": str(monai.__version__)},
        "network": model.networks.config.to_dict(),
        "loss_weights": model.weights.to_dict(),
        "cycle_options": model.cycle_options.to_dict(),
        "grid": atlas.grid.to_dict(),
        "atlas": {
            "image": torch.from_numpy(np.ascontiguousarray(atlas.image, dtype=np.float32)),
            "one_hot": torch.from_numpy(np.ascontiguousarray(atlas.one_hot, dtype=np.float32)).to(torch.float16),
            "values": list(atlas.values),
            "labels": [label.to_dict() for label in atlas.labels],
            **({"channels": _image_to_dict(atlas.channels)} if atlas.channels is not None else {}),
            **(
                {"source_image": _image_to_dict(atlas.source_image, torch.float16)}
                if atlas.source_image is not None
                else {}
            ),
            "prealign_fixed": atlas.prealign_fixed,
        },
        "weights": {
            name: {k: v.detach().cpu() for k, v in module.state_dict().items()}
            for name, module in model.networks.named_children()
        },
        "training": model.training,
        "reference_lncc": model.reference_lncc,
        "reference_label_lncc": model.reference_label_lncc,
        **({"segmenter": model.segmenter.to_dict()} if model.segmenter is not None else {}),
    }
    handle, tmp = tempfile.mkstemp(prefix=".ltnet-", suffix=".pt", dir=path.parent if path.parent.exists() else None)
    os.close(handle)
    try:
        torch.save(state, tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(path, device="cpu") -> LTNetModel:
    """Read a model file; a missing, foreign, corrupt or incompatible file raises ``LTNetError``."""
    path = Path(path)
    if not path.is_file():
        raise LTNetError(f"{path}: no such model file; give a model written by `ltnet train`.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for foreign or truncated files
        raise LTNetError(
            f"{path}: is not an LTNet model or is damaged ({type(error).__name__}); "
            "give a model written by `ltnet train`."
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise LTNetError(f"{path}: is a torch file but not an LTNet model; give a model written by `ltnet train`.")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise LTNetError(
            f"{path}: was written by a newer LTNet "
            f"(format {state['format_version']}, ltnet {state['versions'].get('ltnet')}); update LTNet."
        )
    try:
        networks = LTNetNetworks(NetworkConfig.from_dict(state["network"]))
        for name, module in networks.named_children():
            module.load_state_dict(state["weights"][name])
        atlas_state = state["atlas"]
        atlas = Atlas(
            grid=NetworkGrid.from_dict(state["grid"]),
            image=atlas_state["image"].numpy(),
            one_hot=atlas_state["one_hot"].float().numpy(),
            values=[int(v) for v in atlas_state["values"]],
            labels=[LabelInfo.from_dict(label) for label in atlas_state["labels"]],
            channels=_image_from_dict(atlas_state["channels"]) if "channels" in atlas_state else None,
            source_image=_image_from_dict(atlas_state["source_image"]) if "source_image" in atlas_state else None,
            prealign_fixed=atlas_state.get(
                "prealign_fixed", "atlas"
            ),  # older files: the direction their networks learned
        )
        if atlas.prealign_fixed not in FIXED_IMAGES:
            raise ValueError(f"pre-alignment fixed image {atlas.prealign_fixed!r} is none of {FIXED_IMAGES}")
        weights = LossWeights(**state["loss_weights"])
        cycle_options = CycleOptions.from_dict(state.get("cycle_options"))
        segmenter = Segmenter.from_dict(state["segmenter"]) if "segmenter" in state else None
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise LTNetError(
            f"{path}: is an LTNet model that this version cannot use ({error}); retrain it or update LTNet."
        ) from error
    return LTNetModel(
        networks.to(device),
        atlas,
        weights,
        state.get("training") or {},
        state.get("reference_lncc"),
        state.get("reference_label_lncc"),
        cycle_options,
        segmenter.to(device) if segmenter is not None else None,
    )


def _image_to_dict(image: sitk.Image, dtype: torch.dtype | None = None) -> dict:
    """An image as a tensor ``(D, H, W)`` (its own pixel type, or ``dtype``) and its geometry (LPS)."""
    array = torch.from_numpy(sitk.GetArrayFromImage(image))
    return {
        "array": array.to(dtype) if dtype else array,
        "origin": list(image.GetOrigin()),
        "spacing": list(image.GetSpacing()),
        "direction": list(image.GetDirection()),
    }


def _image_from_dict(values: dict) -> sitk.Image:
    """The image ``_image_to_dict`` stored; float16 comes back as float32 (SimpleITK has no float16)."""
    array = values["array"]
    image = sitk.GetImageFromArray((array.float() if array.dtype == torch.float16 else array).numpy())
    image.SetOrigin(values["origin"])
    image.SetSpacing(values["spacing"])
    image.SetDirection(values["direction"])
    return image

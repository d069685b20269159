"""The segmentation network a distilled model holds (``ltnet distill``): built, stored, loaded and run.

The network is MONAI's ``UNet`` (3-D, residual units, instance normalisation): one input channel (a scan
pre-aligned and resampled onto the network grid, values in [0, 1], as ``G_F`` sees it) and one output channel per
atlas label, the background first (channel ``k`` is label value ``Atlas.values[k]``). With the default arguments it
has 1.19 million parameters (4.8 MB in float32); one training step at the hippocampus grid (40x48x40) took 0.47 s on
one CPU core.

The model file keeps it as plain data: the MONAI class name, its constructor arguments (numbers, strings, lists) and
its ``state_dict``, so it loads with ``torch.load(weights_only=True)``.
"""

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch
from monai.networks import nets
from torch import nn

from ltnet.data.grid import NetworkGrid, resample

#: MONAI network classes a model file may name.
CLASSES = {"UNet": nets.UNet}
#: The default network: four levels of 16 to 128 features, two residual units each.
DEFAULT_ARGUMENTS = {"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 2, "norm": "instance"}


@dataclass
class Segmenter:
    """The network, how to build it again (``class_name`` and ``arguments``), and its training state.

    ``training``: the iteration reached, the settings, the optimizer and random-generator states of the
    distillation (``ltnet.distill``); empty for a bare network.
    """

    network: nn.Module
    class_name: str
    arguments: dict
    training: dict = field(default_factory=dict)

    @classmethod
    def new(cls, label_count: int, arguments: dict | None = None) -> "Segmenter":
        """A freshly initialised network (weights from torch's global generator) for ``label_count`` channels
        (background included)."""
        arguments = {
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": label_count,
            **(arguments or DEFAULT_ARGUMENTS),
        }
        return cls(CLASSES["UNet"](**arguments), "UNet", arguments)

    @property
    def iteration(self) -> int:
        return int(self.training.get("iteration", 0))

    @property
    def grid_multiple(self) -> int:
        """A grid size per axis must be a multiple of this (the product of the strides)."""
        return int(np.prod(self.arguments.get("strides", [1])))

    def to_dict(self) -> dict:
        """Plain data for the model file."""
        return {
            "class": self.class_name,
            "arguments": self.arguments,
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "Segmenter":
        """The segmenter ``to_dict`` stored; an unknown class raises ``ValueError``, wrong weights ``RuntimeError``."""
        name = values["class"]
        if name not in CLASSES:
            raise ValueError(f"segmentation network {name!r} is none of {sorted(CLASSES)}")
        network = CLASSES[name](**values["arguments"])
        network.load_state_dict(values["state_dict"])
        return cls(network, name, dict(values["arguments"]), values.get("training") or {})

    def to(self, device) -> "Segmenter":
        """Moves the network to ``device``; returns this segmenter."""
        self.network.to(device)
        return self

    def probabilities(self, image: torch.Tensor) -> torch.Tensor:
        """Per-label probabilities ``(B, K, D, H, W)`` (float32, softmax over ``K``) of images ``(B, 1, D, H, W)`` on
        the network grid; eval mode, no gradients."""
        self.network.eval()
        with torch.no_grad():
            return torch.softmax(self.network(image.float()).float(), dim=1)


def labels_on_target(
    probabilities: torch.Tensor, values: list[int], grid: NetworkGrid, target: sitk.Image, to_grid: sitk.Transform
) -> sitk.Image:
    """The label map on ``target``'s own grid (int32 label values, ``target``'s geometry).

    ``probabilities`` ``(K, D, H, W)`` lie on ``grid``; ``to_grid`` maps target points to grid points (the inverse
    of the pre-alignment). Each channel is resampled linearly onto the target (outside the grid: background 1, the
    labels 0), and each voxel takes the value of its most probable channel; one channel at a time, so the memory is
    that of two target-sized images whatever the number of labels.
    """
    best = best_channel = None
    for k in range(probabilities.shape[0]):
        channel = grid.image_from_array(probabilities[k].detach().cpu().numpy().astype(np.float32))
        on_target = sitk.GetArrayFromImage(resample(channel, target, to_grid, default=1.0 if k == 0 else 0.0))
        if best is None:
            best, best_channel = on_target, np.zeros(on_target.shape, np.int32)
        else:
            better = on_target > best
            best = np.where(better, on_target, best)
            best_channel[better] = k
    labels = sitk.GetImageFromArray(np.asarray(values, np.int32)[best_channel])
    labels.CopyInformation(target)
    return labels

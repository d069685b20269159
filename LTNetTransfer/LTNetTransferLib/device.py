"""Which GPU the child would use, found without importing torch into Slicer (see LTNetCommonLib.gpu: nvidia-smi
runs once, off the setup path, with a short wait), and what the child reports it actually used."""

from LTNetCommonLib.gpu import describeGpu, prefetchGpuDescription
from LTNetCommonLib.torchReport import describeTorchStart

__all__ = ["describeGpu", "describeTorchStart", "prefetchGpuDescription"]

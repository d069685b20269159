"""Qt-free code shared by the LTNet modules (LTNetTransfer, LTNetTraining): importable with MRML only
(slicer-core), no `qt`, no torch, no ltnet.

Installed by LTNetTransfer's CMakeLists.txt into Slicer's one scripted-modules folder, so every
module of the extension imports it as `LTNetCommonLib`.

- `geometry`: RAS (Slicer) <-> LPS (ITK), volume nodes <-> SimpleITK images.
- `nodeFiles`: volume and segmentation nodes written as files for the `ltnet` child process.
- `process`: how to start `ltnet` (PythonSlicer, PYTHONPATH) and end its whole process tree.
- `dependencies`: torch (PyTorch extension) and pip packages, installed after the user agrees.
- `recentModels`: models finished by LTNetTraining, offered by LTNetTransfer.
"""

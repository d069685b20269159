"""LTNet: one-shot segmentation by label transfer (LT-Net, Wang et al., CVPR 2020).

The package is layered so that data flows one way:

- ``ltnet.data``: files -> SimpleITK images with geometry -> the network grid and back.
- ``ltnet.nn``: the method (networks, spatial transformer, losses), torch only.
- ``ltnet.training``, ``ltnet.transfer``, ``ltnet.qc``: the programs that drive them.
- ``ltnet.cli``: the ``ltnet`` command.
"""

__version__ = "0.1.0"

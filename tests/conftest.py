"""Fixtures for the core tests: the bundled sample atlas (helpers for geometry are in geometry_helpers.py)."""

import pytest
import SimpleITK as sitk

from ltnet import sample


@pytest.fixture(scope="session")
def atlas_image():
    return sitk.ReadImage(str(sample.atlas_image_path()), sitk.sitkFloat32)


@pytest.fixture(scope="session")
def atlas_labels():
    from ltnet.data.io import read_label_map

    return read_label_map(sample.atlas_labels_path()).image

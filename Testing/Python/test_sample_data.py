"""The bundled sample registered in Slicer's Sample Data module, against a fake SampleDataLogic that records the
calls (the module itself needs the Slicer application): the files exist and load as the right node types, the
checksums are the files', the thumbnails are the committed PNGs and listed for installation."""

import hashlib
import struct
import sys
import types
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import SimpleITK as sitk
from LTNetCommonLib.sampleData import CATEGORY, ICONS, registerSampleData

REPO = Path(__file__).resolve().parents[2]


class RecordingSampleDataLogic:
    """SampleData.SampleDataLogic's registration entry point, recording its keyword arguments."""

    def __init__(self):
        self.calls = []

    def registerCustomSampleDataSource(self, **keywords):
        self.calls.append(keywords)


def test_atlas_and_held_out_scans_are_registered_from_the_installed_files():
    import ltnet.sample

    logic = RecordingSampleDataLogic()
    sources = registerSampleData(logic)
    assert logic.calls == sources and len(sources) == 1 + len(ltnet.sample.held_out_scan_paths()) == 4
    atlas = sources[0]
    assert atlas["sampleName"] == "LTNetHippocampusAtlas"
    assert atlas["nodeNames"] == ["LTNetHippocampusAtlas", "LTNetHippocampusAtlas segmentation"]
    assert atlas["loadFileType"] == ["VolumeFile", "SegmentationFile"]  # the labels load as a segmentation
    assert atlas["fileNames"] == ["LTNetHippocampusAtlas.nii.gz", "LTNetHippocampusAtlas.seg.nrrd"]
    expectedFiles = [[ltnet.sample.atlas_image_path(), ltnet.sample.atlas_labels_path()]] + [
        [path] for path in ltnet.sample.held_out_scan_paths()
    ]
    assert [source["sampleName"] for source in sources[1:]] == [
        "LTNetHippocampus058",
        "LTNetHippocampus067",
        "LTNetHippocampus083",
    ]
    names = set()
    for source, files in zip(sources, expectedFiles):
        assert source["category"] == CATEGORY == "LTNet"
        paths = [Path(unquote(urlparse(uri).path)) for uri in source["uris"]]
        assert all(uri.startswith("file://") for uri in source["uris"]) and paths == files
        for path, checksum in zip(paths, source["checksums"]):
            assert path.is_file() and checksum == "SHA256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        assert len(source["uris"]) == len(source["fileNames"]) == len(source["nodeNames"]) == len(source["checksums"])
        names.update(source["fileNames"])  # Sample Data caches by file name: no two alike
        thumbnail = Path(source["thumbnailFileName"])
        assert thumbnail.parent == ICONS == REPO / "LTNetTransfer" / "Resources" / "Icons"
        data = thumbnail.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (128, 128)
    assert len(names) == 5


def test_thumbnails_are_the_middle_slices_and_installed_with_the_module():
    sys.path.insert(0, str(Path(__file__).parent))
    import sample_thumbnails

    cmake = (REPO / "LTNetTransfer" / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "LTNetCommonLib/sampleData.py" in cmake
    for path, expected in sample_thumbnails.thumbnails().items():
        committed = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        assert committed.shape == (128, 128, 3) and np.abs(committed.astype(int) - expected).max() <= 1, path
        assert f"Resources/Icons/{path.name}" in cmake
    atlas = sitk.GetArrayFromImage(sitk.ReadImage(str(ICONS / "LTNetHippocampusAtlas.png"))).astype(int)
    assert (np.abs(atlas[..., 0] - atlas[..., 2]) > 40).sum() > 100, "the atlas labels show in color"


def test_without_the_sample_data_module_nothing_is_registered(monkeypatch):
    monkeypatch.setitem(sys.modules, "SampleData", None)  # import SampleData raises ImportError
    assert registerSampleData() == []
    recorded = RecordingSampleDataLogic()
    monkeypatch.setitem(sys.modules, "SampleData", types.SimpleNamespace(SampleDataLogic=recorded))
    assert len(registerSampleData()) == 4 and len(recorded.calls) == 4


def test_the_module_registers_the_samples_when_slicer_has_started():
    source = (REPO / "LTNetTransfer" / "LTNetTransfer.py").read_text(encoding="utf-8")
    assert 'slicer.app.connect("startupCompleted()", registerSampleData)' in source

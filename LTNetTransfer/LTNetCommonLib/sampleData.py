"""The bundled sample in Slicer's Sample Data module, category "LTNet": the hippocampus atlas (image and
segmentation) and the three held-out scans the demo model never saw, loaded from the files installed with the
`ltnet` package (file:// addresses: nothing is downloaded; Sample Data copies them into its cache, checked by
their SHA256).

The module file connects `registerSampleData` to `slicer.app`'s startupCompleted() signal.
"""

import hashlib
from pathlib import Path

CATEGORY = "LTNet"
ATLAS_SAMPLE = "LTNetHippocampusAtlas"
ICONS = Path(__file__).resolve().parents[1] / "Resources" / "Icons"  # the thumbnails, LTNet<sample>.png


def sha256(path):
    """'SHA256:<hex digest>' of a file, as Sample Data checks it."""
    return "SHA256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def scanSampleName(scanPath):
    """'LTNetHippocampus058' for .../hippocampus_058.nii.gz."""
    return "LTNetHippocampus" + Path(scanPath).name.split(".")[0].rsplit("_", 1)[-1]


def sampleDataSources():
    """Keyword arguments of SampleData.SampleDataLogic.registerCustomSampleDataSource, one dict per sample."""
    import ltnet.sample as sample  # light: paths only

    def source(name, paths, nodeNames, fileTypes):
        return dict(
            category=CATEGORY,
            sampleName=name,
            uris=[Path(path).as_uri() for path in paths],
            fileNames=[f"{name}{''.join(Path(path).suffixes)}" for path in paths],  # unique in the cache
            nodeNames=nodeNames,
            loadFileType=fileTypes,
            checksums=[sha256(path) for path in paths],
            thumbnailFileName=str(ICONS / f"{name}.png"),
        )

    sources = [
        source(
            ATLAS_SAMPLE,
            [sample.atlas_image_path(), sample.atlas_labels_path()],
            [ATLAS_SAMPLE, f"{ATLAS_SAMPLE} segmentation"],
            ["VolumeFile", "SegmentationFile"],
        )
    ]
    for scan in sample.held_out_scan_paths():
        name = scanSampleName(scan)
        sources.append(source(name, [scan], [name], ["VolumeFile"]))
    return sources


def registerSampleData(sampleDataLogic=None):
    """Register the samples with `sampleDataLogic` (default: SampleData.SampleDataLogic); returns their sources.

    Without the Sample Data module or the `ltnet` package nothing is registered (returns [])."""
    try:
        if sampleDataLogic is None:
            import SampleData

            sampleDataLogic = SampleData.SampleDataLogic
        sources = sampleDataSources()
    except ImportError:
        return []
    for source in sources:
        sampleDataLogic.registerCustomSampleDataSource(**source)
    return sources

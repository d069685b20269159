"""How an output was made, written on the node itself: a segmentation found next month says which model file
(and its SHA-256 checksum), which settings and which ltnet version produced it. No Qt."""

import hashlib
import json
from pathlib import Path

#: Node attribute names (saved with the scene).
MODEL_ATTRIBUTE = "LTNet.model"
CHECKSUM_ATTRIBUTE = "LTNet.modelSHA256"
SETTINGS_ATTRIBUTE = "LTNet.settings"
VERSION_ATTRIBUTE = "LTNet.version"
TARGET_ATTRIBUTE = "LTNet.target"


def fileChecksum(path, chunkBytes: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunkBytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ltnetVersion() -> str:
    """The version of the `ltnet` package the child runs (the same package Slicer finds), or "unknown"."""
    try:
        import ltnet  # the package's __init__ only: no torch

        return str(ltnet.__version__)
    except Exception:
        return "unknown"


def makeProvenance(modelPath, settings: dict) -> dict:
    """The attributes to record for a run: model path, its SHA-256, the settings (JSON), the ltnet version."""
    modelPath = Path(modelPath)
    return {
        MODEL_ATTRIBUTE: str(modelPath.resolve()),
        CHECKSUM_ATTRIBUTE: fileChecksum(modelPath),
        SETTINGS_ATTRIBUTE: json.dumps(settings, sort_keys=True),
        VERSION_ATTRIBUTE: ltnetVersion(),
    }


def recordProvenance(node, provenance: dict, targetName: str | None = None) -> None:
    """Set the run's provenance attributes (and the target's name) on an output node."""
    for name, value in provenance.items():
        node.SetAttribute(name, value)
    if targetName is not None:
        node.SetAttribute(TARGET_ATTRIBUTE, targetName)


def readProvenance(node) -> dict:
    """{"model", "modelSHA256", "settings" (dict), "version", "target"} as recorded on `node` (missing keys: absent)."""
    found = {}
    for name in (MODEL_ATTRIBUTE, CHECKSUM_ATTRIBUTE, SETTINGS_ATTRIBUTE, VERSION_ATTRIBUTE, TARGET_ATTRIBUTE):
        value = node.GetAttribute(name)
        if value is not None:
            key = name.split(".", 1)[1]
            found[key] = json.loads(value) if name == SETTINGS_ATTRIBUTE else value
    return found

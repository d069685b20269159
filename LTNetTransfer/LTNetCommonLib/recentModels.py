"""A list of recently trained models shared by LTNetTraining (which adds) and LTNetTransfer (which offers them).

Inside Slicer it lives in the application settings under `LTNet/RecentModels`
(a list of absolute paths, newest first). Outside Slicer (tests, batch without
Qt) it is a JSON file: `$LTNET_RECENT_MODELS_FILE`, or
`~/.config/ltnet/recent_models.json`. Paths that no longer exist are dropped
when read.

    from LTNetCommonLib.recentModels import recentModels, addRecentModel
"""

import json
import os
from pathlib import Path

SETTINGS_KEY = "LTNet/RecentModels"
ENVIRONMENT_VARIABLE = "LTNET_RECENT_MODELS_FILE"
MAXIMUM_COUNT = 10


def qtSettings():
    """Slicer's QSettings, or None outside the Slicer application."""
    try:
        import qt
        import slicer

        if not hasattr(slicer, "app"):
            return None
        return qt.QSettings()
    except ImportError:
        return None


def jsonFile():
    return Path(os.environ.get(ENVIRONMENT_VARIABLE) or Path.home() / ".config" / "ltnet" / "recent_models.json")


def readStored():
    settings = qtSettings()
    if settings is not None:
        value = settings.value(SETTINGS_KEY)
        if value is None:
            return []
        return [value] if isinstance(value, str) else [str(path) for path in value]
    try:
        value = json.loads(jsonFile().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(path) for path in value] if isinstance(value, list) else []


def writeStored(paths):
    settings = qtSettings()
    if settings is not None:
        settings.setValue(SETTINGS_KEY, list(paths))
        return
    path = jsonFile()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(paths), indent=1), encoding="utf-8")


def recentModels():
    """Existing recently trained model files, newest first."""
    return [path for path in readStored() if os.path.isfile(path)]


def addRecentModel(modelPath):
    """Put `modelPath` first in the shared list (kept to MAXIMUM_COUNT existing files); returns the list."""
    modelPath = str(Path(modelPath).expanduser().resolve())
    paths = [modelPath] + [path for path in recentModels() if path != modelPath]
    paths = paths[:MAXIMUM_COUNT]
    writeStored(paths)
    return paths


def recentModelChoices():
    """[(label, path)] of the recent models, newest first, for a model selector: "<file name> (<folder>)"."""
    return [(f"{Path(path).name} ({Path(path).parent})", path) for path in recentModels()]

"""Stand-ins shared by the LTNetTransfer tests that need no real child process."""


class FakeChild:
    """A transfer `ChildProcess` (LTNetTransferLib.process): writes `lines` on stdout, one per poll, then exits
    with `code`; with `code=None` it keeps running until killed."""

    def __init__(self, lines=(), code=0, stderr=""):
        self.lines, self.code, self.stderr, self.killed = list(lines), code, stderr, False

    def readLines(self):
        return [self.lines.pop(0)] if self.lines else []

    def returnCode(self):
        if self.killed:
            return -15
        return None if self.lines or self.code is None else self.code

    def errorOutput(self):
        return self.stderr

    def kill(self):
        self.killed = True


class FakeNode:
    """A node that only has a name."""

    def __init__(self, name):
        self.name = name

    def GetName(self):
        return self.name


class FakeTransferLauncher:
    """A transfer launcher (LTNetTransferLib.process.ProcessLauncher) that writes, instead of running `ltnet`,
    outputs of the shape `ltnet transfer` writes: per target a two-label `.seg.nrrd` on the target's grid (label 1
    in the lower half of a central box, 2 in the upper half, named as in `SEGMENTS`), a QC JSON whose score is
    `scores[i]`, and the extras (zero displacement field, maps, a small atlas). `stages` adds stage lines."""

    SEGMENTS = [(1, "Anterior hippocampus", (0.9, 0.3, 0.2)), (2, "Posterior hippocampus", (0.2, 0.6, 0.9))]

    def __init__(self, scores=(1.0,), code=0, stderr="", stages=()):
        self.scores, self.code, self.stderr, self.stages = list(scores), code, stderr, list(stages)
        self.started = []

    def __call__(self, arguments, workFolder):
        import json
        from pathlib import Path

        self.started.append(arguments)
        if self.code != 0:
            return FakeChild(code=self.code, stderr=self.stderr)

        def values(flag):
            index = arguments.index(flag) + 1
            found = []
            while index < len(arguments) and not arguments[index].startswith("--"):
                found.append(arguments[index])
                index += 1
            return found

        targets = [Path(path) for path in values("--target")]
        out, qc, extras = (Path(values(flag)[0]) for flag in ("--out", "--qc", "--extras"))
        lines = []
        for index, target in enumerate(targets):
            stem = target.name[: -len(".nrrd")]
            image = _readImage(target)
            _writeLabels(image, out / f"{stem}.seg.nrrd", self.SEGMENTS)
            score = self.scores[index % len(self.scores)]
            verdict = "OK" if score >= 0.95 else "check" if score >= 0.6 else "likely failed"
            report = {
                "verdict": verdict,
                "score": score,
                "label_cycle_dice_mean": 0.85,
                "label_cycle_dice": [
                    {"value": 1, "name": "Anterior hippocampus", "dice": 0.9},
                    {"value": 2, "name": "Posterior hippocampus", "dice": 0.7 + 0.01 * index},
                ],
            }
            (qc / f"{stem}.json").write_text(json.dumps(report))
            _writeExtras(image, extras / stem, self.SEGMENTS)
            lines += [line.replace("TARGET", str(target)) for line in self.stages]
            lines.append(json.dumps({"event": "progress", "done": index + 1, "total": len(targets)}))
        lines.append(json.dumps({"event": "done"}))
        return FakeChild(lines, code=0)


def _readImage(path):
    import SimpleITK as sitk

    return sitk.ReadImage(str(path))


def _labelsLike(image, values=(1, 2)):
    """Label values[0] / values[1] in the lower / upper half (along k) of a central box of `image`'s grid (uint8)."""
    import numpy as np
    import SimpleITK as sitk

    size = image.GetSize()  # (i, j, k)
    labels = np.zeros(size[::-1], dtype=np.uint8)
    k0, k1 = size[2] // 4, max(size[2] // 4 + 2, 3 * size[2] // 4)
    j0, j1 = size[1] // 4, max(size[1] // 4 + 1, 3 * size[1] // 4)
    i0, i1 = size[0] // 4, max(size[0] // 4 + 1, 3 * size[0] // 4)
    middle = (k0 + k1) // 2
    labels[k0:middle, j0:j1, i0:i1] = values[0]
    labels[middle:k1, j0:j1, i0:i1] = values[1]
    result = sitk.GetImageFromArray(labels)
    result.CopyInformation(image)
    return result


def _writeLabels(image, path, segments):
    import SimpleITK as sitk

    labels = _labelsLike(image, [value for value, _, _ in segments])
    for index, (value, name, color) in enumerate(segments):
        labels.SetMetaData(f"Segment{index}_ID", f"Segment_{value}")
        labels.SetMetaData(f"Segment{index}_Name", name)
        labels.SetMetaData(f"Segment{index}_Color", " ".join(str(c) for c in color))
        labels.SetMetaData(f"Segment{index}_LabelValue", str(value))
        labels.SetMetaData(f"Segment{index}_Layer", "0")
    sitk.WriteImage(labels, str(path), True)


def _writeExtras(image, prefix, segments):
    """The `--extras` files of one target: maps on its grid, a zero field, and a 12x10x8 atlas."""
    import SimpleITK as sitk

    def write(kind, written):
        sitk.WriteImage(written, f"{prefix}_{kind}.nrrd", True)

    floatImage = sitk.Cast(image, sitk.sitkFloat32)
    write("warped_atlas", floatImage)
    write("jacobian", floatImage * 0 + 1)
    write("inverse_consistency", floatImage * 0)
    atlas = sitk.Image([12, 10, 8], sitk.sitkFloat32)
    atlas.SetSpacing((1.5, 1.5, 2.0))
    write("atlas", atlas)
    write("reconstructed_atlas", atlas)
    atlasLabels = _labelsLike(atlas, [value for value, _, _ in segments])
    write("atlas_labels", atlasLabels)
    write("reconstructed_labels", atlasLabels)
    field = sitk.Image([6, 5, 4], sitk.sitkVectorFloat64, 3)
    field.SetSpacing((4.0, 4.0, 4.0))
    sitk.WriteTransform(sitk.DisplacementFieldTransform(field), f"{prefix}_field.h5")


class FakeTrainingProcess:
    """A training `ChildProcess` (LTNetTrainingLib.trainingProcess): hands out the (stream, line) pairs queued in
    `lines` (append more between polls), runs while `running` is true or lines are left, then exits with `code`."""

    pid = 0

    def __init__(self, lines=(), code=0, running=False):
        self.lines, self.code, self.running, self.killed = list(lines), code, running, False

    def drainLines(self):
        lines, self.lines = self.lines, []
        return lines

    def returnCode(self):
        if self.killed:
            return -15
        return None if self.lines or self.running else self.code

    def killTree(self, timeout=5.0):
        self.killed, self.running, self.lines = True, False, []

    def wait(self, timeout=None):
        return self.returnCode()


class FakeQtWidget:
    """Enough of any Qt widget for a panel: Qt properties are attributes, `connect` records slots that `emit`
    calls; combo boxes hold `items` (texts), node selectors `node` / `checked_nodes`."""

    def __init__(self, name="", **properties):
        self.name, self.slots, self.items, self.lines = name, {}, [], []
        self.enabled, self.checked, self.collapsed, self.currentPath, self.text, self.toolTip = (
            True,
            False,
            False,
            "",
            "",
            "",
        )
        self.value, self.currentIndex, self.format, self.node, self.checked_nodes = 0, 0, "", None, []
        self.__dict__.update(properties)

    def connect(self, signal, slot):
        self.slots.setdefault(signal, []).append(slot)

    def emit(self, signal, *arguments):
        for slot in self.slots.get(signal, []):
            slot(*arguments)

    def setToolTip(self, text):
        self.toolTip = text

    def itemText(self, index):
        return self.items[index] if 0 <= index < len(self.items) else ""

    def setItemText(self, index, text):
        self.items[index] = text

    def checkedNodes(self):
        return list(self.checked_nodes)

    def currentNode(self):
        return self.node

    def clear(self):
        self.lines = []

    def appendPlainText(self, line):
        self.lines.append(line)

    def addCurrentPathToHistory(self):
        pass


class FakeQtTimer:
    """qt.QTimer: `fire()` calls the timeout slots."""

    def __init__(self):
        self.active, self.slots = False, []

    def setInterval(self, milliseconds):
        pass

    def connect(self, signal, slot):
        self.slots.append(slot)

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def fire(self):
        for slot in self.slots:
            slot()


class FakeQtSettings:
    """qt.QSettings on a dict shared by all instances (`FakeQtSettings.stored`; clear it in a fixture)."""

    stored = {}

    def value(self, key, default=None):
        return self.stored.get(key, default)

    def setValue(self, key, value):
        self.stored[key] = value

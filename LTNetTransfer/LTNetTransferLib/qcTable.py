"""QC numbers (the `ltnet transfer --qc` JSON, one dict per target) -> table nodes."""

import vtk

#: Per-target columns: (QC JSON key, short column title). The verdict's thresholds are defined by `ltnet.qc`.
TARGET_COLUMNS = [
    ("verdict", "Verdict"),
    ("labels_from", "Labels from"),
    ("score", "Score"),
    ("label_cycle_dice_mean", "Cycle Dice"),
    ("image_cycle_error", "Img cycle err"),
    ("inverse_consistency_mm", "Inv cons mm"),
    ("folded_fraction", "Folded"),
    ("label_lncc", "LNCC lab"),
    ("network_label_lncc", "Net LNCC lab"),
    ("reference_label_lncc", "Ref LNCC lab"),
    ("lncc", "LNCC"),
    ("reference_lncc", "Ref LNCC"),
]

#: What each short title means: the column's description (Slicer's table views show it as the header's tooltip).
COLUMN_DESCRIPTIONS = {
    "verdict": "OK, check or likely failed, from the score",
    "labels_from": "What drew the labels: the registration, or a distilled model's segmentation network (the QC "
    "numbers judge the registration either way)",
    "score": "Image match where the labels went, relative to the model's reference (about 1 when good), "
    "minus 10 times the share of folded voxels beyond 1%",
    "label_cycle_dice_mean": "Label cycle Dice (mean over the labels): how well the atlas labels survive "
    "atlas -> target -> atlas",
    "image_cycle_error": "Image cycle error: mean absolute difference between the atlas and its round trip",
    "inverse_consistency_mm": "Inverse consistency (mm): mean distance a point moves after forward then backward map",
    "folded_fraction": "Folded fraction: share of voxels where the forward map folds (Jacobian determinant <= 0)",
    "label_lncc": "LNCC in labels: local correlation of the target and the warped atlas where the labels went",
    "network_label_lncc": "Network's LNCC in labels: the same for the network's own prediction; with refinement "
    "steps this is what the score reads",
    "reference_label_lncc": "Reference LNCC in labels: median of the same measure over the model's training scans",
    "lncc": "LNCC of the target and the warped atlas over the whole grid",
    "reference_lncc": "Reference LNCC: median of the same measure over the model's training scans",
}


#: Columns of text; the others are numbers.
TEXT_COLUMNS = {"verdict", "labels_from"}


def _addColumn(tableNode, title: str, numeric: bool):
    column = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
    column.SetName(title)
    tableNode.AddColumn(column)
    return column


def reportedColumns(qcs: list[dict]) -> list[tuple[str, str]]:
    """The ``TARGET_COLUMNS`` some target's QC reports (the network's own numbers, for example, only come with
    refinement), the verdict always: a column no target has would be NaN in every row. *Labels from* only where
    some target's labels come from a distilled model's network (otherwise every row would say registration)."""

    def shown(key: str) -> bool:
        if key == "labels_from":
            return any(qc.get(key, "registration") != "registration" for qc in qcs)
        return key == "verdict" or any(key in qc for qc in qcs)

    return [(key, title) for key, title in TARGET_COLUMNS if shown(key)]


def addQcTableNodes(scene, targetNames: list[str], qcs: list[dict], name: str = "LTNet QC"):
    """Two table nodes: one row per target (the verdict and its numbers, ``reportedColumns``) and one row per target
    and label (the label's cycle Dice). Returns (targetTableNode, labelTableNode)."""
    targetTable = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    targetTable.SetUseColumnTitleAsColumnHeader(True)
    targetColumn = _addColumn(targetTable, "Target", numeric=False)
    shown = reportedColumns(qcs)
    columns = {key: _addColumn(targetTable, title, numeric=key not in TEXT_COLUMNS) for key, title in shown}
    for key, title in shown:
        targetTable.SetColumnDescription(title, COLUMN_DESCRIPTIONS[key])

    labelTable = scene.AddNewNodeByClass("vtkMRMLTableNode", name + " per label")
    labelTable.SetUseColumnTitleAsColumnHeader(True)
    labelTarget = _addColumn(labelTable, "Target", numeric=False)
    labelValue = _addColumn(labelTable, "Label value", numeric=True)
    labelName = _addColumn(labelTable, "Label", numeric=False)
    labelDice = _addColumn(labelTable, "Label cycle Dice", numeric=True)

    for targetName, qc in zip(targetNames, qcs):
        targetColumn.InsertNextValue(targetName)
        for key, column in columns.items():
            value = qc.get(key)
            if key in TEXT_COLUMNS:
                column.InsertNextValue("" if value is None else str(value))
            else:
                column.InsertNextValue(float("nan") if value is None else float(value))
        for entry in qc.get("label_cycle_dice", []):
            labelTarget.InsertNextValue(targetName)
            labelValue.InsertNextValue(float(entry["value"]))
            labelName.InsertNextValue(str(entry.get("name", "")))
            labelDice.InsertNextValue(float(entry["dice"]))
    for table in (targetTable, labelTable):
        table.GetTable().Modified()
        table.Modified()
    return targetTable, labelTable

"""QC numbers (the `ltnet transfer --qc` JSON, one dict per target) -> table nodes."""

import vtk

#: Per-target columns: (QC JSON key, column title). The verdict's thresholds are defined by `ltnet.qc`.
TARGET_COLUMNS = [
    ("verdict", "Verdict"),
    ("score", "Score"),
    ("label_cycle_dice_mean", "Label cycle Dice (mean)"),
    ("image_cycle_error", "Image cycle error"),
    ("inverse_consistency_mm", "Inverse consistency (mm)"),
    ("folded_fraction", "Folded fraction"),
    ("label_lncc", "LNCC in labels"),
    ("network_label_lncc", "Network's LNCC in labels (refined: what the score reads)"),
    ("reference_label_lncc", "Reference LNCC in labels"),
    ("lncc", "LNCC"),
    ("reference_lncc", "Reference LNCC"),
]


def _addColumn(tableNode, title: str, numeric: bool):
    column = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
    column.SetName(title)
    tableNode.AddColumn(column)
    return column


def addQcTableNodes(scene, targetNames: list[str], qcs: list[dict], name: str = "LTNet QC"):
    """Two table nodes: one row per target (the verdict and its numbers) and one row per target and label
    (the label's cycle Dice). Returns (targetTableNode, labelTableNode)."""
    targetTable = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    targetTable.SetUseColumnTitleAsColumnHeader(True)
    targetColumn = _addColumn(targetTable, "Target", numeric=False)
    columns = {key: _addColumn(targetTable, title, numeric=key != "verdict") for key, title in TARGET_COLUMNS}

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
            if key == "verdict":
                column.InsertNextValue(str(value))
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

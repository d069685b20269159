"""The quality-check list without Qt: worst first, verdict colors, short headers with tooltips, labels lowest first."""

from LTNetTransferLib import qcView
from LTNetTransferLib.qcTable import COLUMN_DESCRIPTIONS, TARGET_COLUMNS, reportedColumns


def test_rows_are_worst_verdict_first_then_lowest_score():
    qcs = [
        {"verdict": "OK", "score": 1.02, "label_cycle_dice_mean": 0.9},
        {"verdict": "check", "score": 0.9},
        {"verdict": "likely failed", "score": 0.4},
        {"verdict": "check", "score": 0.7},
        {},
    ]
    rows = qcView.resultRows(["a", "b", "c", "d", "e"], qcs)
    assert [row.target for row in rows] == ["e", "c", "d", "b", "a"]
    assert [row.index for row in rows] == [4, 2, 3, 1, 0]
    assert rows[1].color == qcView.verdictColor("likely failed") != qcView.verdictColor("OK")
    assert rows[0].color == qcView.UNKNOWN_COLOR and rows[0].cells() == ["e", "?", "", ""]
    assert rows[-1].cells() == ["a", "OK", "1.020", "0.900"]
    assert rows[1].tooltip.startswith("likely failed:")


def test_label_rows_lowest_dice_first_with_low_ones_flagged():
    qc = {"label_cycle_dice": [{"value": 1, "name": "A", "dice": 0.91}, {"value": 5, "name": "B", "dice": 0.62}]}
    assert qcView.labelRows(qc) == [("B (5)", "0.620", True), ("A (1)", "0.910", False)]


def test_qc_table_headers_are_short_and_each_has_a_description():
    assert all(len(title) <= 13 for _, title in TARGET_COLUMNS), [title for _, title in TARGET_COLUMNS]
    assert {key for key, _ in TARGET_COLUMNS} == COLUMN_DESCRIPTIONS.keys()
    assert all(len(header) <= 10 and tooltip for header, tooltip in qcView.RESULT_COLUMNS + qcView.LABEL_COLUMNS)


def test_qc_table_leaves_out_columns_no_target_reports():
    plain = {"verdict": "OK", "score": 1.0, "label_lncc": 0.5}
    refined = {**plain, "network_label_lncc": 0.4}
    assert [key for key, _ in reportedColumns([plain])] == ["verdict", "score", "label_lncc"]
    assert "network_label_lncc" in [key for key, _ in reportedColumns([plain, refined])]
    assert [key for key, _ in reportedColumns([{}])] == ["verdict"]
    registration = {**plain, "labels_from": "registration"}
    assert [key for key, _ in reportedColumns([registration])] == ["verdict", "score", "label_lncc"]
    distilled = {**plain, "labels_from": "segmentation network"}
    assert [key for key, _ in reportedColumns([plain, distilled])][:2] == ["verdict", "labels_from"]


def test_qc_table_says_which_targets_a_distilled_models_network_labelled(scene):
    from LTNetTransferLib.qcTable import addQcTableNodes

    plain = {"verdict": "OK", "score": 1.0, "labels_from": "registration"}
    distilled = {"verdict": "check", "score": 0.8, "labels_from": "segmentation network"}
    targets, _ = addQcTableNodes(scene, ["a", "b"], [plain, distilled])
    column = targets.GetTable().GetColumnByName("Labels from")
    assert not column.IsNumeric() and [column.GetValue(i) for i in range(2)] == ["registration", "segmentation network"]
    assert targets.GetTable().GetColumnByName("Score").GetValue(1) == 0.8

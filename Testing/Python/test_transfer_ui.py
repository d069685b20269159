"""Every widget the LTNetTransfer module file uses exists in its .ui file, and every parameter-node
field is bound to a widget there (SlicerParameterName)."""

import ast
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "LTNetTransfer"


def ui_widgets() -> dict:
    tree = ElementTree.parse(MODULE / "Resources" / "UI" / "LTNetTransfer.ui")
    return {widget.get("name"): widget for widget in tree.iter("widget")}


def test_every_widget_used_in_python_is_in_the_ui():
    for path in (MODULE / "LTNetTransfer.py", MODULE / "LTNetTransferLib" / "transferPanel.py"):
        used = set(re.findall(r"\bui\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
        missing = sorted(used - ui_widgets().keys())
        assert not missing, f"widgets used in {path.name} but absent from LTNetTransfer.ui: {missing}"
    panel = (MODULE / "LTNetTransferLib" / "transferPanel.py").read_text()
    assert {"applyButton", "recentModelsComboBox", "atlasVolumeSelector"} <= set(re.findall(r"\bui\.(\w+)", panel))


def test_cmake_installs_every_script_once():
    """Both Lib packages and the shared LTNetCommonLib are listed (LTNetTransfer installs LTNetCommonLib)."""
    transfer = (MODULE / "CMakeLists.txt").read_text()
    training = (MODULE.parent / "LTNetTraining" / "CMakeLists.txt").read_text()
    for path in sorted((MODULE / "LTNetTransferLib").glob("*.py")):
        assert f"${{MODULE_NAME}}Lib/{path.name}" in transfer, path
    for path in sorted((MODULE / "LTNetCommonLib").glob("*.py")):
        assert f"LTNetCommonLib/{path.name}" in transfer, path
        assert "LTNetCommonLib/" + path.name not in training, f"{path.name} would be installed twice"


def test_the_qt_free_packages_import_without_torch_ltnet_or_qt():
    import subprocess
    import sys

    code = (
        "import sys; sys.path[:0] = sys.argv[1:]; import LTNetCommonLib.geometry, LTNetCommonLib.nodeFiles, "
        "LTNetCommonLib.process, LTNetCommonLib.dependencies, LTNetCommonLib.recentModels, "
        "LTNetCommonLib.moduleWidget, LTNetTransferLib, "
        "LTNetTransferLib.display; bad = {'torch', 'ltnet', 'qt'} & set(sys.modules); assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code, str(MODULE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_parameter_node_fields_are_bound_in_the_ui():
    tree = ast.parse((MODULE / "LTNetTransfer.py").read_text())
    wrapper = next(
        node for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name == "LTNetTransferParameterNode"
    )
    fields = {statement.target.id for statement in wrapper.body if isinstance(statement, ast.AnnAssign)}
    bound = set()
    for widget in ui_widgets().values():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound.add(prop.findtext("string"))
    assert fields == bound


def test_the_help_and_the_docs_give_the_verdict_thresholds_of_ltnet_qc():
    qc = __import__("pytest").importorskip("ltnet.qc")
    ok, check = qc.OK_THRESHOLD, qc.CHECK_THRESHOLD
    for path in (MODULE / "LTNetTransfer.py", MODULE.parent / "docs" / "SLICER.md"):
        text = " ".join(re.sub(r"</?b>|\*\*", "", path.read_text()).split())
        assert f"OK if score >= {ok:.2f}" in text, path
        assert f"check if {check:.2f} <= score < {ok:.2f}" in text, path
        assert f"likely failed below {check:.2f}" in text, path

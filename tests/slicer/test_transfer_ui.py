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
    source = (MODULE / "LTNetTransfer.py").read_text()
    used = set(re.findall(r"\bui\.([A-Za-z_][A-Za-z0-9_]*)", source))
    assert used, "the module file should use widgets through self.ui"
    missing = sorted(used - ui_widgets().keys())
    assert not missing, f"widgets used in LTNetTransfer.py but absent from LTNetTransfer.ui: {missing}"


def test_parameter_node_fields_are_bound_in_the_ui():
    tree = ast.parse((MODULE / "LTNetTransfer.py").read_text())
    wrapper = next(node for node in ast.walk(tree)
                   if isinstance(node, ast.ClassDef) and node.name == "LTNetTransferParameterNode")
    fields = {statement.target.id for statement in wrapper.body if isinstance(statement, ast.AnnAssign)}
    bound = set()
    for widget in ui_widgets().values():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound.add(prop.findtext("string"))
    assert fields == bound

"""The Qt side of LTNetTraining, checked without Qt: names used in Python exist in the .ui, files are complete."""

import ast
import re
import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "LTNetTraining"
UI_FILE = MODULE / "Resources" / "UI" / "LTNetTraining.ui"
PYTHON_FILES = [MODULE / "LTNetTraining.py", *sorted((MODULE / "LTNetTrainingLib").glob("*.py"))]


def uiWidgets():
    """{widget name: class} of every widget in the .ui."""
    root = ElementTree.parse(UI_FILE).getroot()
    return {widget.get("name"): widget.get("class") for widget in root.iter("widget")}


def parameterNames():
    """SlicerParameterName values of the .ui."""
    root = ElementTree.parse(UI_FILE).getroot()
    return {prop.find("string").text for prop in root.iter("property") if prop.get("name") == "SlicerParameterName"}


def test_every_widget_name_used_in_python_exists_in_the_ui():
    widgets = uiWidgets()
    used = set()
    for path in PYTHON_FILES:
        used |= set(re.findall(r"\bui\.(\w+)", path.read_text(encoding="utf-8")))
    assert used, "no ui.<name> found: has the panel moved?"
    missing = sorted(name for name in used if name not in widgets)
    assert not missing, f"used in Python but not in {UI_FILE.name}: {missing}"


def test_parameter_names_of_the_ui_are_fields_of_the_parameter_node():
    tree = ast.parse((MODULE / "LTNetTraining.py").read_text(encoding="utf-8"))
    parameterClass = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "LTNetTrainingParameterNode"
    )
    fields = {statement.target.id for statement in parameterClass.body if isinstance(statement, ast.AnnAssign)}
    assert parameterNames() == fields


def test_ui_declares_its_custom_widgets_and_node_selectors_get_the_scene():
    root = ElementTree.parse(UI_FILE).getroot()
    declared = {custom.find("class").text for custom in root.iter("customwidget")}
    qtClasses = {
        "QLabel",
        "QComboBox",
        "QSpinBox",
        "QDoubleSpinBox",
        "QCheckBox",
        "QPushButton",
        "QProgressBar",
        "QPlainTextEdit",
    }
    assert set(uiWidgets().values()) - qtClasses <= declared
    receivers = {
        connection.find("receiver").text
        for connection in root.iter("connection")
        if connection.find("signal").text == "mrmlSceneChanged(vtkMRMLScene*)"
    }
    selectors = {name for name, cls in uiWidgets().items() if cls.startswith("qMRML") and cls != "qMRMLWidget"}
    assert selectors == receivers


def test_cmake_lists_every_script_and_resource():
    cmake = (MODULE / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "WITH_GENERIC_TESTS" in cmake
    selfTests = (MODULE.parent / "Testing" / "Python" / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "slicer_add_python_unittest" in selfTests and "LTNetTraining" in selfTests  # the module's self-test
    for path in PYTHON_FILES:
        relative = path.relative_to(MODULE).as_posix().replace("LTNetTraining", "${MODULE_NAME}", 1)
        assert relative in cmake, f"{relative} missing from CMakeLists.txt"
    assert "Resources/Icons/${MODULE_NAME}.png" in cmake and "Resources/UI/${MODULE_NAME}.ui" in cmake


def test_icon_is_a_128_pixel_png():
    data = (MODULE / "Resources" / "Icons" / "LTNetTraining.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (128, 128)


def test_torch_is_never_imported_when_the_module_loads():
    for path in [MODULE / "LTNetTraining.py", MODULE / "LTNetTrainingLib" / "__init__.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        topLevel = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = {alias.name for node in topLevel for alias in node.names} | {
            node.module for node in topLevel if isinstance(node, ast.ImportFrom)
        }
        assert not any(name and name.split(".")[0] in ("torch", "ltnet", "qt") for name in names), path


def test_the_qt_free_package_imports_without_torch_ltnet_or_qt():
    import subprocess
    import sys

    code = (
        "import sys; sys.path[:0] = sys.argv[1:]; import LTNetTrainingLib; "
        "bad = {'torch', 'ltnet', 'qt'} & set(sys.modules); assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(MODULE), str(MODULE.parent / "LTNetTransfer")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_device_and_prealignment_choices_are_bound_to_the_parameter_node_in_the_panel_order():
    from LTNetTrainingLib.trainingSettings import DEVICES, PREALIGN_FIXED, PREALIGN_FIXED_LABELS

    tree = ast.parse((MODULE / "LTNetTraining.py").read_text(encoding="utf-8"))
    parameterClass = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "LTNetTrainingParameterNode"
    )
    choices = {}
    for statement in parameterClass.body:
        if isinstance(statement, ast.AnnAssign) and "Choice" in ast.unparse(statement.annotation):
            call = next(node for node in ast.walk(statement.annotation) if isinstance(node, ast.Call))
            choices[statement.target.id] = tuple(ast.literal_eval(call.args[0]))
    # the binding fills the combo boxes with these choices; the panel reads them by index
    assert choices == {"device": DEVICES, "prealignFixed": PREALIGN_FIXED, "distillDevice": DEVICES}
    assert len(PREALIGN_FIXED_LABELS) == len(PREALIGN_FIXED)
    root = ElementTree.parse(UI_FILE).getroot()
    bound = {
        widget.get("name"): prop.find("string").text
        for widget in root.iter("widget")
        for prop in widget.findall("property")
        if prop.get("name") == "SlicerParameterName"
    }
    assert bound["deviceComboBox"] == "device" and bound["prealignFixedComboBox"] == "prealignFixed"
    assert bound["distillDeviceComboBox"] == "distillDevice"
    assert {
        bound[name] for name in ("warmupSpinBox", "couplingSpinBox", "augmentCheckBox", "fieldDownsizeSpinBox")
    } == {
        "warmup",
        "coupling",
        "augment",
        "fieldDownsize",
    }
    advanced = next(w for w in root.iter("widget") if w.get("name") == "advancedCollapsibleButton")
    assert {w.get("name") for w in advanced.iter("widget")} >= {"warmupSpinBox", "augmentCheckBox"}

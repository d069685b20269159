"""Render docs/screenshot.png: what LTNet Transfer puts into Slicer's views, drawn by Slicer's own slice pipeline.

    .venv/bin/python Testing/Python/render_screenshot.py [--out docs/screenshot.png]

No Slicer application runs here: the MRML scene, the slice logics (reslicing and layer blending) and the
segmentation displayable manager come from the `slicer-core` wheel, and VTK renders them off-screen. The content
is the module logic's real output: `TransferLogic.transfer` with the bundled demo model onto the first held-out
sample scan (a `ltnet transfer` child process on the CPU), laid out by `display.showCycleConsistency`:
Red = target with the transferred segmentation and the warped atlas, Yellow = atlas with the round-trip labels
as outlines, Green = target with the Jacobian determinant of the forward map, and the QC table node's row.
It is a composite of those views, not a picture of the Slicer window (no widgets, toolbars or module panel).
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "LTNetTransfer"), str(HERE)]

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402
from conftest import new_scene  # noqa: E402
from LTNetTransferLib import SubprocessLauncher  # noqa: E402
from LTNetTransferLib.display import showCycleConsistency  # noqa: E402
from LTNetTransferLib.logic import TransferLogic  # noqa: E402
from vtk.util.numpy_support import vtk_to_numpy  # noqa: E402

import ltnet.sample  # noqa: E402

VIEW_SIZE = (330, 300)  # pixels of one slice view
#: title, background color of its bar (Slicer's view colors)
VIEWS = {
    "Red": ("Target + transferred labels, warped atlas", (0.93, 0.33, 0.33)),
    "Yellow": ("Atlas + round-trip labels (outlines)", (0.93, 0.84, 0.29)),
    "Green": ("Target + Jacobian (blue < 1 < red)", (0.43, 0.69, 0.38)),
}


def add_scan(scene, path: Path, name: str):
    """A scalar volume node from an image file, geometry from ITK's LPS to Slicer's RAS."""
    image = sitk.ReadImage(str(path))
    node = slicer.util.addVolumeFromArray(sitk.GetArrayFromImage(image).astype(np.float32), name=name)
    direction = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = np.diag([-1, -1, 1]) @ direction
    ijk_to_ras[:3, 3] = np.diag([-1, -1, 1]) @ np.array(image.GetOrigin())
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
    node.CreateDefaultDisplayNodes()
    return node


def add_slice_views(scene, app_logic) -> dict:
    """Red (axial), Yellow (sagittal), Green (coronal) slice logics with their slice and composite nodes."""
    logics = {}
    collection = vtk.vtkCollection()
    for name, orientation in (("Red", "Axial"), ("Yellow", "Sagittal"), ("Green", "Coronal")):
        logic = slicer.vtkMRMLSliceLogic()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        slice_node = logic.AddSliceNode(name)
        slice_node.SetOrientation(orientation)
        logics[name] = logic
        collection.AddItem(logic)
    app_logic.SetSliceLogics(collection)
    scene.keepSliceLogics = (logics, collection)
    return logics


def transfer(scene):
    """The module logic's transfer of the demo model onto the first held-out sample scan."""
    target = add_scan(scene, ltnet.sample.held_out_scan_paths()[0], "hippocampus target")
    logic = TransferLogic(SubprocessLauncher(sys.executable, {"OMP_NUM_THREADS": "1"}), logCallback=print)
    return logic.transfer(ltnet.sample.demo_model_path(), target, device="cpu", timeout=600)


def slice_renderer(window, app_logic, logic, viewport, title, bar_color):
    """A renderer in `window` showing one slice logic's blended layers plus the segmentations and color legends
    (Slicer's displayable managers, as a slice view has them)."""
    renderer = vtk.vtkRenderer()
    renderer.SetViewport(*viewport)
    window.AddRenderer(renderer)  # the displayable managers need the window (and its interactor)
    renderer.SetBackground(0, 0, 0)
    slice_node = logic.GetSliceNode()
    width, height = VIEW_SIZE
    slice_node.SetDimensions(width, height, 1)
    logic.FitSliceToAll(width, height)
    logic.SnapSliceOffsetToIJK()
    mapper = vtk.vtkImageMapper()
    mapper.SetInputConnection(logic.GetImageDataConnection())
    mapper.SetColorWindow(255)
    mapper.SetColorLevel(127.5)
    image = vtk.vtkActor2D()
    image.SetMapper(mapper)
    renderer.AddViewProp(image)

    factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
    factory.SetMRMLApplicationLogic(app_logic)
    for manager in ("vtkMRMLSegmentationsDisplayableManager2D", "vtkMRMLColorLegendDisplayableManager"):
        if not factory.IsDisplayableManagerRegistered(manager):
            factory.RegisterDisplayableManager(manager)
    group = factory.InstantiateDisplayableManagers(renderer)
    group.SetMRMLDisplayableNode(slice_node)

    text = vtk.vtkTextActor()
    text.SetInput(f"{slice_node.GetLayoutName()}: {title}")
    text.GetTextProperty().SetFontSize(13)
    text.GetTextProperty().SetColor(0, 0, 0)
    text.GetTextProperty().SetBackgroundColor(*bar_color)
    text.GetTextProperty().SetBackgroundOpacity(1.0)
    text.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    text.GetPositionCoordinate().SetValue(0.01, 0.94)
    renderer.AddViewProp(text)
    return renderer, group


def table_text(table_node, columns) -> str:
    """`column: value` lines of the QC table node's first row, for the listed columns that it has and fills (a
    column that only a refined transfer fills, empty or NaN here, is left out)."""
    table = table_node.GetTable()
    lines = []
    for column in columns:
        array = table.GetColumnByName(column)
        value = str(array.GetValue(0)) if array is not None else ""
        if value not in ("", "nan"):
            lines.append(f"{column}: {value}")
    return "\n".join(lines)


def table_renderer(result, viewport):
    renderer = vtk.vtkRenderer()
    renderer.SetViewport(*viewport)
    renderer.SetBackground(0.97, 0.97, 0.97)
    table = result.qcTableNode.GetTable()
    columns = [table.GetColumnName(index) for index in range(table.GetNumberOfColumns())]
    body = vtk.vtkTextActor()
    body.SetInput(f"{result.qcTableNode.GetName()}\n\n" + table_text(result.qcTableNode, columns))
    body.GetTextProperty().SetFontSize(13)
    body.GetTextProperty().SetColor(0.1, 0.1, 0.1)
    body.GetTextProperty().SetFontFamilyToCourier()
    body.GetTextProperty().SetVerticalJustificationToTop()
    body.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    body.GetPositionCoordinate().SetValue(0.03, 0.96)
    renderer.AddViewProp(body)
    caption = vtk.vtkTextActor()
    caption.SetInput(
        "LTNet Transfer on the bundled sample (demo model):\nits slice views and QC table, rendered off-screen\n"
        "by slicer-core (not a picture of the Slicer window)"
    )
    caption.GetTextProperty().SetFontSize(11)
    caption.GetTextProperty().SetColor(0.35, 0.35, 0.35)
    caption.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    caption.GetPositionCoordinate().SetValue(0.03, 0.03)
    renderer.AddViewProp(caption)
    return renderer


def render(out: Path) -> Path:
    scene = new_scene()
    logics = add_slice_views(scene, scene.appLogic)
    result = transfer(scene)
    shown = showCycleConsistency(result, opacity=0.4)
    assert shown == ["Red", "Yellow", "Green"], shown
    result.targetVolumeNode.GetDisplayNode().SetInterpolate(True)

    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(True)
    width, height = VIEW_SIZE
    window.SetSize(2 * width, 2 * height)
    interactor = vtk.vtkRenderWindowInteractor()  # never started: the displayable managers only look it up
    interactor.SetRenderWindow(window)
    keep = []
    positions = {"Red": (0, 1), "Yellow": (1, 1), "Green": (0, 0)}
    for name, (column, row) in positions.items():
        viewport = (column / 2, row / 2, (column + 1) / 2, (row + 1) / 2)
        renderer, group = slice_renderer(window, scene.appLogic, logics[name], viewport, *VIEWS[name])
        keep.append(group)
    window.AddRenderer(table_renderer(result, (0.5, 0.0, 1.0, 0.5)))
    for name, segmentation in (
        ("Red", result.segmentationNode),
        ("Green", result.segmentationNode),
        ("Yellow", result.atlasSegmentationNode),
    ):  # each view through the middle of its labels
        bounds = [0.0] * 6
        segmentation.GetRASBounds(bounds)
        logics[name].GetSliceNode().JumpSliceByCentering(*[(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)])
    for logic in logics.values():
        logic.UpdateSliceNode()
        logic.GetImageDataConnection().GetProducer().Update()
    window.Render()
    window.Render()

    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.Update()
    pixels = vtk_to_numpy(grab.GetOutput().GetPointData().GetScalars())
    assert pixels.max() > 0, "the render is black: off-screen rendering failed"
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(out))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    print(f"wrote {out} ({out.stat().st_size} bytes), verdict {result.verdict}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    render(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()

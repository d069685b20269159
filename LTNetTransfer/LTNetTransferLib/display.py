"""How the results look: color maps with legends, and the cycle-consistency layout of the slice views.

Only MRML nodes are touched (no Qt), so this runs in tests and batch mode too.
Views: Red = target with the warped atlas ū over it; Yellow = atlas with the
reconstructed atlas l̄ over it, atlas labels filled and l̄_s as outlines;
Green = target with the Jacobian determinant or inverse-consistency map.
"""

import slicer
import vtk

#: Value ranges shown by the color maps: Jacobian determinant (1 = volume kept) and inverse-consistency error (mm).
JACOBIAN_RANGE = (0.0, 2.0)
INVERSE_CONSISTENCY_RANGE_MM = (0.0, 3.0)


def addProceduralColorNode(scene, name: str, points):
    """A continuous color map; points: [(value, (r, g, b)), ...]. Reused if the scene has one of that name."""
    existing = scene.GetFirstNodeByName(name)
    if existing is not None and existing.IsA("vtkMRMLProceduralColorNode"):
        return existing
    colorNode = scene.AddNewNodeByClass("vtkMRMLProceduralColorNode", name)
    function = vtk.vtkColorTransferFunction()
    for value, color in points:
        function.AddRGBPoint(value, *color)
    colorNode.SetAndObserveColorTransferFunction(function)
    colorNode.SetAttribute("Category", "LTNet")
    return colorNode


def styleScalarMap(volumeNode, colorNode, valueRange, title: str):
    """Show `volumeNode` with `colorNode` over `valueRange`, with a color legend titled `title`.
    Returns the legend display node (None in a bare scene without the Colors module)."""
    volumeNode.CreateDefaultDisplayNodes()
    displayNode = volumeNode.GetDisplayNode()
    displayNode.SetAndObserveColorNodeID(colorNode.GetID())
    displayNode.SetAutoWindowLevel(False)
    displayNode.SetWindowLevelMinMax(*valueRange)
    scene = volumeNode.GetScene()
    legend = None
    if scene.IsNodeClassRegistered("vtkMRMLColorLegendDisplayNode"):  # registered by the Colors module
        legend = scene.AddNewNodeByClass("vtkMRMLColorLegendDisplayNode", volumeNode.GetName() + " legend")
    if legend is None:
        return None
    legend.SetAndObservePrimaryDisplayNode(displayNode)
    legend.SetTitleText(title)
    legend.SetLabelFormat("%.2f")
    legend.SetNumberOfLabels(5)
    volumeNode.AddAndObserveDisplayNodeID(legend.GetID())
    return legend


def styleJacobian(volumeNode):
    """Blue where the atlas is compressed, white where volume is kept, red where expanded; black = folded (<= 0)."""
    colorNode = addProceduralColorNode(
        volumeNode.GetScene(),
        "LTNet Jacobian",
        [(0.0, (0.0, 0.0, 0.0)), (0.02, (0.1, 0.2, 0.8)), (1.0, (1.0, 1.0, 1.0)), (2.0, (0.8, 0.1, 0.1))],
    )
    return styleScalarMap(volumeNode, colorNode, JACOBIAN_RANGE, "Jacobian determinant")


def styleInverseConsistency(volumeNode):
    """Dark = consistent, yellow/white = forward and backward maps disagree (mm)."""
    colorNode = addProceduralColorNode(
        volumeNode.GetScene(),
        "LTNet inverse consistency",
        [(0.0, (0.05, 0.0, 0.2)), (1.0, (0.7, 0.1, 0.4)), (2.0, (1.0, 0.6, 0.0)), (3.0, (1.0, 1.0, 0.8))],
    )
    return styleScalarMap(volumeNode, colorNode, INVERSE_CONSISTENCY_RANGE_MM, "Inverse consistency (mm)")


def _viewNodes(scene, className: str) -> dict:
    nodes = {}
    for index in range(scene.GetNumberOfNodesByClass(className)):
        node = scene.GetNthNodeByClass(index, className)
        nodes[node.GetLayoutName()] = node
    return nodes


def showOnlyIn(displayNode, sliceNodes) -> None:
    """Restrict a display node to the given views."""
    displayNode.SetViewNodeIDs([sliceNode.GetID() for sliceNode in sliceNodes])


def showCycleConsistency(result, opacity: float = 0.5, scalarMap: str = "jacobian") -> list[str]:
    """Lay out the Red, Yellow and Green slice views for one target's result (see module docstring).

    result: a `TargetResult`; scalarMap: "jacobian" or "inverse_consistency". Returns the layout names
    of the views set up (empty if the scene has no slice views, as in batch mode).
    """
    scene = result.targetVolumeNode.GetScene()
    layoutNode = scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    if layoutNode is not None:
        layoutNode.SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpView)
    composites = _viewNodes(scene, "vtkMRMLSliceCompositeNode")
    slices = _viewNodes(scene, "vtkMRMLSliceNode")
    mapNode = result.jacobianNode if scalarMap == "jacobian" else result.inverseConsistencyNode
    layers = {
        "Red": (result.targetVolumeNode, result.warpedAtlasNode),
        "Yellow": (result.atlasVolumeNode, result.reconstructedAtlasNode),
        "Green": (result.targetVolumeNode, mapNode),
    }
    shown = []
    for viewName, (background, foreground) in layers.items():
        composite = composites.get(viewName)
        if composite is None or background is None:  # no atlas without QC volumes: that view is left alone
            continue
        composite.SetLinkedControl(False)
        composite.SetBackgroundVolumeID(background.GetID() if background else None)
        composite.SetForegroundVolumeID(foreground.GetID() if foreground else None)
        composite.SetForegroundOpacity(opacity)
        composite.SetLabelVolumeID(None)
        shown.append(viewName)
    red, yellow, green = (slices.get(name) for name in ("Red", "Yellow", "Green"))
    targetViews = [view for view in (red, green) if view is not None]
    atlasViews = [view for view in (yellow,) if view is not None]
    if not shown:
        return shown
    for segmentationNode, views, fill in (
        (result.segmentationNode, targetViews, True),
        (result.atlasSegmentationNode, atlasViews, True),
        (result.reconstructedSegmentationNode, atlasViews, False),
    ):
        if segmentationNode is None:
            continue
        segmentationNode.CreateDefaultDisplayNodes()
        displayNode = segmentationNode.GetDisplayNode()
        showOnlyIn(displayNode, views)
        displayNode.SetVisibility(True)
        displayNode.SetVisibility2DFill(fill)
        displayNode.SetVisibility2DOutline(True)
    for mapVolume, views in (
        (result.jacobianNode, [green] if scalarMap == "jacobian" else []),
        (result.inverseConsistencyNode, [green] if scalarMap != "jacobian" else []),
    ):
        if mapVolume is None:
            continue
        for index in range(mapVolume.GetNumberOfDisplayNodes()):
            displayNode = mapVolume.GetNthDisplayNode(index)
            if displayNode.IsA("vtkMRMLColorLegendDisplayNode"):
                showOnlyIn(displayNode, [view for view in views if view is not None])
                displayNode.SetVisibility(bool(views and views[0] is not None))
    return shown


def resultNodes(result) -> list:
    """The nodes of one result that the views show as overlays (None skipped; the shared atlas excluded)."""
    nodes = (
        result.segmentationNode,
        result.reconstructedSegmentationNode,
        result.warpedAtlasNode,
        result.jacobianNode,
        result.inverseConsistencyNode,
        result.reconstructedAtlasNode,
    )
    return [node for node in nodes if node is not None]


def hideResult(result) -> None:
    """Hide one result's segmentations (2-D and 3-D) and the legends of its maps, in every view."""
    for node in resultNodes(result):
        for index in range(node.GetNumberOfDisplayNodes()):
            displayNode = node.GetNthDisplayNode(index)
            if displayNode is not None and (
                node.IsA("vtkMRMLSegmentationNode") or displayNode.IsA("vtkMRMLColorLegendDisplayNode")
            ):
                displayNode.SetVisibility(False)


def showResult(results, index: int, opacity: float = 0.5, scalarMap: str = "jacobian") -> list[str]:
    """Show exactly `results[index]`: every other result of the list is hidden first, then the chosen one is
    laid out as `showCycleConsistency` does. Returns the layout names of the views set up."""
    chosen = results[index]
    for result in results:
        if result is not chosen and result.segmentationNode is not chosen.segmentationNode:
            hideResult(result)
    shown = showCycleConsistency(chosen, opacity, scalarMap)
    if not shown and chosen.segmentationNode is not None:  # no slice views (batch): still the only one visible
        chosen.segmentationNode.CreateDefaultDisplayNodes()
        chosen.segmentationNode.GetDisplayNode().SetVisibility(True)
    return shown


def setOverlayOpacity(scene, opacity: float) -> None:
    """The foreground opacity of the Red, Yellow and Green views (the slider of the QC section)."""
    for name, composite in _viewNodes(scene, "vtkMRMLSliceCompositeNode").items():
        if name in ("Red", "Yellow", "Green"):
            composite.SetForegroundOpacity(opacity)

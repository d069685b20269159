"""The live loss plot: one table row per progress line, one plot series per loss term, one chart.

Table columns: `iteration`, then one column per loss name in the order they first
appear. A loss that appears later gets NaN in earlier rows.
"""

import math

ITERATION_COLUMN = "iteration"

# Distinct, readable colors for the loss series (RGB 0..1), cycled.
SERIES_COLORS = [
    (0.12, 0.47, 0.71),
    (1.00, 0.50, 0.05),
    (0.17, 0.63, 0.17),
    (0.84, 0.15, 0.16),
    (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29),
    (0.89, 0.47, 0.76),
    (0.50, 0.50, 0.50),
    (0.74, 0.74, 0.13),
    (0.09, 0.75, 0.81),
]


class LossPlot:
    """Creates and updates the table, series and chart nodes of one training in `scene`."""

    def __init__(self, scene, name="LTNet training"):
        import slicer

        self.scene = scene
        self.tableNode = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{name} losses")
        self.chartNode = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} losses")
        self.chartNode.SetTitle(f"{name}: losses")
        self.chartNode.SetXAxisTitle("iteration")
        self.chartNode.SetYAxisTitle("loss")
        self.seriesNodes = {}
        self.plotSeriesClass = slicer.vtkMRMLPlotSeriesNode
        self.addColumn(ITERATION_COLUMN)

    def columnNames(self):
        table = self.tableNode.GetTable()
        return [table.GetColumn(index).GetName() for index in range(table.GetNumberOfColumns())]

    def addColumn(self, name):
        import vtk

        table = self.tableNode.GetTable()
        column = vtk.vtkDoubleArray()
        column.SetName(name)
        column.SetNumberOfTuples(table.GetNumberOfRows())
        column.Fill(math.nan)
        table.AddColumn(column)
        if name != ITERATION_COLUMN:
            self.addSeries(name)

    def addSeries(self, lossName):
        seriesNode = self.scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", lossName)
        seriesNode.SetAndObserveTableNodeID(self.tableNode.GetID())
        seriesNode.SetXColumnName(ITERATION_COLUMN)
        seriesNode.SetYColumnName(lossName)
        seriesNode.SetPlotType(self.plotSeriesClass.PlotTypeScatter)
        seriesNode.SetMarkerStyle(self.plotSeriesClass.MarkerStyleNone)
        seriesNode.SetColor(*SERIES_COLORS[len(self.seriesNodes) % len(SERIES_COLORS)])
        self.chartNode.AddAndObservePlotSeriesNodeID(seriesNode.GetID())
        self.seriesNodes[lossName] = seriesNode

    def addRows(self, progressEvents):
        """Append one row per progress event ({"iteration": i, "losses": {...}}); one Modified at the end."""
        if not progressEvents:
            return
        table = self.tableNode.GetTable()
        for event in progressEvents:
            losses = event.get("losses") or {}
            for name in losses:
                if name not in self.columnNames():
                    self.addColumn(name)
            row = table.InsertNextBlankRow(math.nan)
            table.SetValueByName(row, ITERATION_COLUMN, float(event.get("iteration", row + 1)))
            for name, value in losses.items():
                try:
                    table.SetValueByName(row, name, float(value))
                except (TypeError, ValueError):
                    table.SetValueByName(row, name, math.nan)
        table.Modified()
        self.tableNode.Modified()

    def removeNodes(self):
        for node in [*self.seriesNodes.values(), self.chartNode, self.tableNode]:
            if node is not None and node.GetScene() is not None:
                self.scene.RemoveNode(node)

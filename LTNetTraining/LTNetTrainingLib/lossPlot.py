"""The live loss plot: one table row per progress line, one plot series per loss term, one chart.

Table columns: `iteration`, then one column per loss name in the order they first
appear. A loss that appears later gets NaN in earlier rows.

The nodes can leave the scene while a training runs (the scene is closed, or the user
deletes one): rows are then only kept in memory, nothing is written into the removed
nodes, and `showInScene()` makes new nodes holding every row so far.
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
        self.name = name
        self.plotSeriesClass = slicer.vtkMRMLPlotSeriesNode
        self.events = []  # every progress event so far, also those that arrived while the nodes were gone
        self.makeNodes()

    def makeNodes(self):
        """New table and chart nodes in `scene` (series come with the loss columns)."""
        self.tableNode = self.scene.AddNewNodeByClass("vtkMRMLTableNode", f"{self.name} losses")
        self.chartNode = self.scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{self.name} losses")
        self.chartNode.SetTitle(f"{self.name}: losses")
        self.chartNode.SetXAxisTitle("iteration")
        self.chartNode.SetYAxisTitle("loss")
        self.seriesNodes = {}
        self.addColumn(ITERATION_COLUMN)

    def nodes(self):
        return [self.tableNode, self.chartNode, *self.seriesNodes.values()]

    @property
    def inScene(self):
        """False once any node of the plot has left the scene (scene closed, node deleted)."""
        return all(node.GetScene() is self.scene for node in self.nodes())

    def showInScene(self):
        """The chart node, first made anew with every row so far if the plot's nodes left the scene."""
        if not self.inScene:
            self.removeNodes()
            self.makeNodes()
            self.writeRows(self.events)
        return self.chartNode

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
        """Append one row per progress event ({"iteration": i, "losses": {...}}); one Modified at the end.

        Nodes that left the scene are not written to: the rows are kept for `showInScene()`.
        """
        if not progressEvents:
            return
        self.events.extend(progressEvents)
        if self.inScene:
            self.writeRows(progressEvents)

    def writeRows(self, progressEvents):
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
        """Remove the plot's nodes that are still in the scene."""
        for node in [*self.seriesNodes.values(), self.chartNode, self.tableNode]:
            if node is not None and node.GetScene() is self.scene:
                self.scene.RemoveNode(node)

"""LTNetCommonLib.moduleWidget: the parameter-node part both module widgets share (Slicer's template),
with stand-ins for the widget base class, the parameter node wrapper and the panel."""

import types

from LTNetCommonLib.moduleWidget import LTNetModuleWidgetMixin


class FakeParameterNode:
    def __init__(self):
        self.connected = []

    def connectGui(self, ui):
        self.connected.append(ui)
        return f"tag{len(self.connected)}"

    def disconnectGui(self, tag):
        assert tag == f"tag{len(self.connected)}", tag
        self.connected.pop()


class FakePanel:
    def __init__(self):
        self.calls = []

    def updateButtons(self):
        self.calls.append("updateButtons")

    def onSceneStartClose(self):
        self.calls.append("onSceneStartClose")

    def cleanup(self):
        self.calls.append("cleanup")


class Widget(LTNetModuleWidgetMixin):
    def __init__(self, node):
        self.ui = object()
        self.panel = FakePanel()
        self.logic = types.SimpleNamespace(getParameterNode=lambda: node)
        self.parent = types.SimpleNamespace(isEntered=True)
        self.observersRemoved = False

    def removeObservers(self):
        self.observersRemoved = True


def test_enter_binds_exit_unbinds_and_enter_again_binds_once():
    node = FakeParameterNode()
    widget = Widget(node)
    widget.initializeParameterNode()
    assert node.connected == [widget.ui] and widget.parameterNode is node
    widget.exit()
    assert node.connected == []
    widget.exit()  # twice is harmless
    widget.enter()
    widget.enter()
    assert node.connected == [widget.ui]
    assert widget.panel.calls.count("updateButtons") == 3


def test_scene_close_stops_the_panel_and_drops_the_node_then_binds_the_new_one():
    node = FakeParameterNode()
    widget = Widget(node)
    widget.initializeParameterNode()
    widget.onSceneStartClose(None, None)
    assert widget.parameterNode is None and node.connected == []
    assert "onSceneStartClose" in widget.panel.calls
    widget.onSceneEndClose(None, None)
    assert widget.parameterNode is node and node.connected == [widget.ui]
    widget.cleanup()
    assert widget.observersRemoved and widget.panel.calls[-1] == "cleanup"

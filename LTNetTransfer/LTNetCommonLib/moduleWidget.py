"""The part of a scripted module widget that both LTNet modules share (Slicer's module template):
load the .ui, keep the module's parameter node bound to it, follow scene close, hand the rest to a panel.

No Qt import here (slicer is imported where the Slicer application is needed), so tests run it
with stand-ins. A module widget mixes it in before `ScriptedLoadableModuleWidget`:

    class LTNetTrainingWidget(LTNetModuleWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
        def setup(self):
            ScriptedLoadableModuleWidget.setup(self)
            self.setupPanel("UI/LTNetTraining.ui", LTNetTrainingLogic(), TrainingPanel)

The logic's `getParameterNode()` returns the parameterNodeWrapper; the panel has `updateButtons()`,
`onSceneStartClose()` and `cleanup()`.
"""


class LTNetModuleWidgetMixin:
    """Parameter node binding (connectGui/disconnectGui), scene-close handling and clean-up of a module widget."""

    logic = None
    panel = None
    _parameterNode = None
    _parameterNodeGuiTag = None

    def setupPanel(self, uiPath, logic, makePanel):
        """Load `uiPath` (relative to Resources), make the panel with `makePanel(ui, logic)`, bind the parameter
        node."""
        import slicer

        uiWidget = slicer.util.loadUI(self.resourcePath(uiPath))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = logic
        self.panel = makePanel(self.ui, logic)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    @property
    def parameterNode(self):
        """The bound parameter node wrapper (None while the scene closes)."""
        return self._parameterNode

    def cleanup(self):
        self.removeObservers()
        if self.panel is not None:
            self.panel.cleanup()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.disconnectParameterNode()  # bound again, and the GUI updated from it, when the user comes back

    def disconnectParameterNode(self):
        if self._parameterNode is not None and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        if self.panel is not None:
            self.panel.onSceneStartClose()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode):
        self.disconnectParameterNode()
        self._parameterNode = parameterNode
        if self._parameterNode is not None:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
        if self.panel is not None:
            self.panel.updateButtons()

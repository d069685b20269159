"""Slicer's translation functions for the module files: `_` (`slicer.i18n.tr`) and `translate`.

Inside Slicer they mark and translate user-visible strings; slicer-core (the tests outside Slicer) has no
translation machinery, so there they return the English text.
"""

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:

    def _(text):
        return text

    def translate(context, text):
        return text


__all__ = ["_", "translate"]

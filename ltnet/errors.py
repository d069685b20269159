"""The one exception type users see."""


class LTNetError(Exception):
    """A problem the user can fix: the message names the file, the problem and what to do.

    The command line prints it as one line and exits with status 2; the Slicer
    modules show it in a message box.
    """

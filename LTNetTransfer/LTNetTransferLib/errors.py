"""The one error type the Slicer side raises for the user to read."""


class TransferError(RuntimeError):
    """A transfer could not start or did not finish; `str(error)` says why and what to do.

    `details` holds the full log or trace of the child process, for the log, not for a dialog.
    """

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details

"""Stand-ins shared by the LTNetTransfer tests that need no real child process."""


class FakeChild:
    """A transfer `ChildProcess` (LTNetTransferLib.process): writes `lines` on stdout, one per poll, then exits
    with `code`; with `code=None` it keeps running until killed."""

    def __init__(self, lines=(), code=0, stderr=""):
        self.lines, self.code, self.stderr, self.killed = list(lines), code, stderr, False

    def readLines(self):
        return [self.lines.pop(0)] if self.lines else []

    def returnCode(self):
        if self.killed:
            return -15
        return None if self.lines or self.code is None else self.code

    def errorOutput(self):
        return self.stderr

    def kill(self):
        self.killed = True


class FakeNode:
    """A node that only has a name."""

    def __init__(self, name):
        self.name = name

    def GetName(self):
        return self.name

"""`python -m ltnet` is the `ltnet` command (used by Slicer's PythonSlicer and torchrun)."""

from ltnet.cli import main

raise SystemExit(main())

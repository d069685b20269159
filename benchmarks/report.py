"""Writing benchmark results into docs/BENCHMARKS.md, one marked section per benchmark."""

import platform
import re
from pathlib import Path

import torch

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun the script to refresh it.\n"


def machine() -> str:
    """What the numbers were measured on."""
    threads = torch.get_num_threads()
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU only, {threads} thread{'s' if threads > 1 else ''}"
    )
    return f"{platform.processor() or platform.machine()}, {device}, torch {torch.__version__}"


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section between ``<!-- name -->`` and ``<!-- /name -->``."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    block = f"<!-- {name} -->\n{markdown.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def mean_std(values) -> str:
    import numpy as np

    values = np.asarray(list(values), dtype=float)
    return f"{values.mean():.3f} ± {values.std():.3f}"

"""What the quality-check list shows, worked out without Qt: the targets worst first, the verdict's color,
short column headers with their tooltips, and the per-label cycle Dice of one target."""

from dataclasses import dataclass

#: Verdicts of `ltnet.qc`, worst first, with their colors (r, g, b in 0..255) and what they mean.
VERDICTS = {
    "likely failed": ((220, 60, 50), "The image match where the labels went is far below the model's reference."),
    "check": (
        (235, 170, 40),
        "Look at the overlays: the match is below the model's usual, or labels did not round-trip.",
    ),
    "OK": ((60, 170, 75), "The image match is as good as on the model's training scans."),
}
UNKNOWN_COLOR = (150, 150, 150)

#: Below this cycle Dice a label is highlighted (the mean below it turns a verdict OK into check in ltnet.qc).
LOW_LABEL_DICE = 0.8

#: Columns of the per-target list: (short header, tooltip).
RESULT_COLUMNS = [
    ("Target", "The target volume; select a row to show its overlays."),
    ("Verdict", "OK, check or likely failed, from the score (see the module's help)."),
    ("Score", "Image match where the labels went, relative to the model's reference (about 1 when good)."),
    ("Cycle Dice", "Mean label cycle Dice: how well the atlas labels survive atlas -> target -> atlas."),
]

#: Columns of the per-label list: (short header, tooltip).
LABEL_COLUMNS = [
    ("Label", "The atlas label (its value in brackets)."),
    ("Cycle Dice", f"Dice of the label after the round trip; below {LOW_LABEL_DICE} is highlighted."),
]


@dataclass(frozen=True)
class ResultRow:
    """One row of the per-target list: `index` is the result's place in the run's results."""

    index: int
    target: str
    verdict: str
    score: float | None
    cycleDice: float | None
    color: tuple
    tooltip: str

    def cells(self) -> list[str]:
        return [self.target, self.verdict or "?", _number(self.score), _number(self.cycleDice)]


def _number(value) -> str:
    return "" if value is None else f"{value:.3f}"


def severity(verdict: str) -> int:
    """0 for the worst verdict ("likely failed"), growing toward OK; unknown verdicts come first."""
    order = list(VERDICTS)
    return order.index(verdict) if verdict in order else -1


def verdictColor(verdict: str) -> tuple:
    return VERDICTS.get(verdict, (UNKNOWN_COLOR, ""))[0]


def resultRows(targetNames: list[str], qcs: list[dict]) -> list[ResultRow]:
    """The per-target rows, worst first: by verdict (likely failed, check, OK), then lowest score first."""
    rows = []
    for index, (name, qc) in enumerate(zip(targetNames, qcs)):
        verdict = str(qc.get("verdict", ""))
        score = qc.get("score")
        color, meaning = VERDICTS.get(verdict, (UNKNOWN_COLOR, "No QC numbers for this target."))
        rows.append(
            ResultRow(index, name, verdict, score, qc.get("label_cycle_dice_mean"), color, f"{verdict}: {meaning}")
        )
    return sorted(
        rows, key=lambda row: (severity(row.verdict), float("inf") if row.score is None else row.score, row.index)
    )


def labelRows(qc: dict) -> list[tuple[str, str, bool]]:
    """(label text, Dice text, low) per atlas label of one target, lowest cycle Dice first."""
    entries = sorted(qc.get("label_cycle_dice", []), key=lambda entry: float(entry["dice"]))
    return [
        (
            f"{entry.get('name', '')} ({int(entry['value'])})",
            f"{float(entry['dice']):.3f}",
            float(entry["dice"]) < LOW_LABEL_DICE,
        )
        for entry in entries
    ]

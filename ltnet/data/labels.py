"""What a label value means: its name, color and (optionally) Slicer terminology."""

from dataclasses import dataclass, field

# Distinct colors for label maps that carry none (RGB in 0..1).
_PALETTE = (
    (0.90, 0.30, 0.24),
    (0.20, 0.60, 0.86),
    (0.18, 0.80, 0.44),
    (0.95, 0.77, 0.06),
    (0.61, 0.35, 0.71),
    (0.90, 0.49, 0.13),
    (0.10, 0.74, 0.61),
    (0.93, 0.44, 0.63),
    (0.50, 0.55, 0.55),
    (0.55, 0.27, 0.07),
)


@dataclass(frozen=True)
class LabelInfo:
    """One structure of the atlas: its integer value in label maps, its name and RGB color (0..1)."""

    value: int
    name: str
    color: tuple[float, float, float]
    terminology: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "name": self.name,
            "color": list(self.color),
            "terminology": dict(self.terminology),
        }

    @classmethod
    def from_dict(cls, values: dict) -> "LabelInfo":
        return cls(
            int(values["value"]),
            str(values["name"]),
            tuple(float(c) for c in values["color"]),
            dict(values.get("terminology", {})),
        )


def default_labels(values) -> list[LabelInfo]:
    """Names ``Label N`` and palette colors for label values that come without a description."""
    return [LabelInfo(int(v), f"Label {int(v)}", _PALETTE[i % len(_PALETTE)]) for i, v in enumerate(sorted(values))]

"""What the training's and the distillation's settings share: construction from keywords, the run options that
`ltnet train` and `ltnet distill` both take, and the command line around a settings object."""

from dataclasses import fields


class RunSettings:
    """Mixed into the settings dataclasses (`TrainingSettings`, `DistillSettings`). They define the fields `device`,
    `seed` and `checkpointEvery`, and `commandArguments()`, their own options; `kind` names them in errors."""

    kind = "run"

    @classmethod
    def fromKeywords(cls, **keywords):
        """Settings from keyword arguments; unknown names raise a TypeError that lists the known ones."""
        known = {field.name for field in fields(cls)}
        unknown = set(keywords) - known
        if unknown:
            raise TypeError(f"Unknown {cls.kind} setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**keywords)

    def runOptions(self):
        """`--device`, `--seed` and `--checkpoint-every` (at least 1)."""
        return [
            "--device",
            self.device,
            "--seed",
            str(int(self.seed)),
            "--checkpoint-every",
            str(max(1, int(self.checkpointEvery))),
        ]


def commandLine(command, inputs, outputModelPath, settings, resume):
    """`ltnet <command>` (without the launcher): the `inputs` options, `--out outputModelPath` with jsonl progress,
    the options of `settings`, and `--resume` when `resume`."""
    return [
        command,
        *inputs,
        "--out",
        str(outputModelPath),
        "--progress",
        "jsonl",
        *settings.commandArguments(),
        *(["--resume"] if resume else []),
    ]

"""Where ``ltnet transfer`` writes each target's outputs, decided once before any scan is computed.

Every target gets its own output name. A target's name is its file stem (``scan.nii.gz`` -> ``scan``; a DICOM
folder: the folder's name); where several targets share a name (``pat1/T1`` and ``pat2/T1``, or ``a/scan.nii.gz``
and ``b/scan.nii.gz``), each is prefixed by the fewest parent folders that tell them apart (``pat1_T1``,
``pat2_T1``). The label map, the QC JSON and the extras of a target all use that one name. Existing outputs are
refused unless ``--overwrite`` replaces them or ``--skip-existing`` keeps the finished targets.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from ltnet.data.io import SEG_NRRD, output_suffix
from ltnet.errors import LTNetError
from ltnet.paths import IMAGE_SUFFIXES, refuse_duplicates, stem

EXTRAS_IMAGES = (
    "warped_atlas",
    "reconstructed_atlas",
    "reconstructed_labels",
    "atlas",
    "atlas_labels",
    "jacobian",
    "inverse_consistency",
)  # each written as <name>_<image>.nrrd
EXTRAS_FIELD = "field.h5"  # <name>_field.h5: the displacement field as an ITK transform


@dataclass
class Job:
    """One target and where its outputs go."""

    target: Path
    output: Path
    qc_output: Path | None = None
    extras_prefix: Path | None = None  # the extras are <extras_prefix>_<what>.nrrd and <extras_prefix>_field.h5

    def extras_files(self) -> dict[str, Path]:
        """What each extra output is -> its file ({} without --extras)."""
        if self.extras_prefix is None:
            return {}
        prefix = self.extras_prefix
        files = {name: prefix.with_name(f"{prefix.name}_{name}.nrrd") for name in EXTRAS_IMAGES}
        files["field"] = prefix.with_name(f"{prefix.name}_{EXTRAS_FIELD}")
        return files

    def files(self) -> list[Path]:
        """Every file this job writes."""
        return [self.output, *([self.qc_output] if self.qc_output else []), *self.extras_files().values()]

    def done(self) -> bool:
        """Finished by an earlier run: its label map exists (written last, after the QC file and the extras), and
        its QC file when one is asked for."""
        return self.output.exists() and (self.qc_output is None or self.qc_output.exists())


def plan_jobs(targets: list[Path], out, label_suffix: str | None, qc=None, extras=None) -> list[Job]:
    """One ``Job`` per target (nothing is created or written here).

    ``out``: a label map file for a single target (named like an image file and not an existing folder), else a
    folder; in a folder each label map is ``<name><label_suffix>``, or ``<name>`` plus the target's own suffix when
    ``label_suffix`` is None (a DICOM folder target gets ``.nii.gz``). ``qc`` likewise (a ``.json`` file or a folder
    of ``<name>.json``); ``extras``: a folder. Raises an ``LTNetError`` for a target given twice, or when an output
    would replace an input scan.
    """
    names = unique_names(targets)
    single = len(targets) == 1

    def as_file(path: Path, suffixes) -> bool:
        return single and not path.is_dir() and output_suffix(path) in suffixes

    out = Path(out)
    for option, folder in (("--out", out), ("--qc", qc), ("--extras", extras)):
        if folder is not None and Path(folder).is_file() and not (option != "--extras" and single):
            raise LTNetError(f"{folder}: is a file; {option} needs a folder here (one file per target in it).")
    jobs = []
    for target, name in zip(targets, names):
        if as_file(out, IMAGE_SUFFIXES + (SEG_NRRD,)):
            output = out
        else:
            own = output_suffix(target) if target.is_file() else ""
            output = out / (name + (label_suffix or own or ".nii.gz"))
        qc_output = None
        if qc is not None:
            qc_output = Path(qc) if as_file(Path(qc), (".json",)) else Path(qc) / f"{name}.json"
        extras_prefix = Path(extras) / name if extras is not None else None
        jobs.append(Job(target, output, qc_output, extras_prefix))
    _check_distinct(jobs)
    return jobs


def unique_names(targets: list[Path]) -> list[str]:
    """Each target's output name: its stem, prefixed where names clash by the fewest parent folders that tell the
    clashing targets apart (case is ignored in comparing, as some file systems do)."""
    refuse_duplicates(targets, "--target")
    resolved = [Path(t).resolve() for t in targets]
    names = [stem(Path(t)) for t in targets]
    groups = defaultdict(list)
    for i, name in enumerate(names):
        groups[name.casefold()].append(i)
    for members in groups.values():
        if len(members) > 1:
            for i, name in zip(members, _tell_apart([resolved[i] for i in members], [names[i] for i in members])):
                names[i] = name
    counts = Counter(name.casefold() for name in names)
    for target, name in zip(targets, names):
        if counts[name.casefold()] > 1:
            raise LTNetError(
                f"{target}: no distinct output name can be made from its path ({name} is taken); rename the file "
                "or its folder."
            )
    return names


def _tell_apart(paths: list[Path], names: list[str]) -> list[str]:
    """``names`` prefixed by 1, 2, ... parent folders until they differ; if no depth does (files of one folder
    that differ only in type, ``a.nii.gz`` and ``a.nrrd``), the file type is added to the name instead."""
    deepest = max(len(p.parent.parts) - 1 for p in paths)
    for depth in range(1, deepest + 1):
        candidates = ["_".join([*p.parent.parts[1:][-depth:], name]) for p, name in zip(paths, names)]
        if len({c.casefold() for c in candidates}) == len(candidates):
            return candidates
    return [name + output_suffix(p).replace(".", "_") if p.is_file() else name for p, name in zip(paths, names)]


def _check_distinct(jobs: list[Job]) -> None:
    inputs = {job.target.resolve(): job.target for job in jobs}
    seen = {}
    for job in jobs:
        for path in job.files():
            key = path.resolve()
            if key in inputs:
                raise LTNetError(f"{path}: would overwrite an input scan; choose another output folder.")
            if key in seen:
                raise LTNetError(
                    f"{path}: would be written for both {seen[key]} and {job.target}; give --out, --qc and "
                    "--extras separate files or folders."
                )
            seen[key] = job.target


def jobs_to_run(jobs: list[Job], overwrite: bool = False, skip_existing: bool = False) -> list[Job]:
    """The jobs to compute, given what exists already.

    Default: none of their files may exist (an ``LTNetError`` names the first, and nothing is written).
    ``overwrite``: all jobs, replacing what exists. ``skip_existing``: the jobs not ``done()`` (a finished target is
    kept; an unfinished one is computed again, its leftover files replaced).
    """
    if overwrite and skip_existing:
        raise LTNetError("--overwrite and --skip-existing: give one of them.")
    if overwrite:
        return list(jobs)
    if skip_existing:
        return [job for job in jobs if not job.done()]
    existing = [path for job in jobs for path in job.files() if path.exists()]
    if existing:
        more = f" (and {len(existing) - 1} other output file(s))" if len(existing) > 1 else ""
        raise LTNetError(
            f"{existing[0]}: exists already{more}; pass --overwrite to replace, or --skip-existing to keep the "
            "finished targets and label only the others (nothing was written)."
        )
    return list(jobs)


def create_folders(jobs: list[Job]) -> None:
    """The folders the jobs write into (after the checks, so a refusal creates nothing)."""
    for folder in sorted({path.parent for job in jobs for path in job.files()}):
        folder.mkdir(parents=True, exist_ok=True)

"""Transfer over a cohort with reading, pre-alignment and writing overlapping the network.

Three stages run at once: DataLoader worker processes read each target and
prepare it (normalise, affine pre-alignment, resampling onto the network grid);
the main process runs ``ltnet.transfer.transfer`` on the prepared scan; a
background thread writes the label map, the QC JSON and the extras. Under
``torchrun`` each rank takes ``targets[rank::world_size]``, so every output is
written by exactly one process. Output names and the checks on existing outputs
are decided before, for all targets at once (``ltnet.outputs``).
"""

import functools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch.utils.data import DataLoader, Dataset

from ltnet.data.io import read_image
from ltnet.data.prepare import Atlas, prepare_scan
from ltnet.errors import LTNetError
from ltnet.model_file import LTNetModel
from ltnet.outputs import Job
from ltnet.transfer import TransferResult, transfer

MAX_PENDING_WRITES = 4  # results held in memory while the writer catches up


class PreparedTargets(Dataset):
    """Item ``i``: ``(i, image, prepared)`` for ``jobs[i]``, or ``(i, None, LTNetError)`` when the file is bad.

    Runs in DataLoader workers; SimpleITK images and transforms pickle back to the main process.
    """

    def __init__(self, jobs: list[Job], atlas: Atlas, prealign: bool, refuse_labels_unless: str | None = None):
        self.jobs, self.atlas, self.prealign, self.refuse_labels_unless = jobs, atlas, prealign, refuse_labels_unless

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int):
        try:
            image = read_image(self.jobs[i].target, self.refuse_labels_unless)
            return i, image, prepare_scan(image, self.atlas, self.prealign)
        except LTNetError as error:  # re-raised in the main process with its own message
            return i, None, error


def _as_is(item):
    return item


def run_batch(
    model: LTNetModel,
    jobs: list[Job],
    device: torch.device,
    prealign: bool,
    write: Callable[[Job, TransferResult], None],
    on_done: Callable[[int, Job, TransferResult], None],
    workers: int = 2,
    refine_steps: int = 0,
    qc: bool = True,
    extras: bool = False,
    *,
    on_stage: Callable[[int, Job, str, int, int], None] | None = None,
    refuse_labels_unless: str | None = None,
    qc_cycle: bool = True,
) -> float:
    """Transfer every job; ``write`` runs in a background thread, ``on_done(k, job, result)`` once job ``k`` is written.

    ``workers`` DataLoader processes prepare the targets (0: in the main process);
    ``refine_steps`` > 0 refines the forward map on each target first (``ltnet.refine``).
    ``on_stage(k, job, stage, step, steps)``: job ``k`` (from 1) enters a stage (``ltnet.transfer.transfer``'s, and
    ``prealign`` while its reading and pre-alignment is awaited). ``refuse_labels_unless``: see ``read_image``.
    ``qc_cycle``: see ``transfer``.
    Returns the seconds taken.
    """
    started = time.monotonic()
    loader = DataLoader(
        PreparedTargets(jobs, model.atlas, prealign, refuse_labels_unless),
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
        prefetch_factor=2 if workers > 0 else None,
        persistent_workers=False,
    )
    pending: deque[tuple[Future, Job, TransferResult]] = deque()
    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltnet-writer") as writer:

        def finish_written(block: bool) -> None:
            nonlocal done
            while pending and (block or pending[0][0].done() or len(pending) > MAX_PENDING_WRITES):
                future, job, result = pending.popleft()
                future.result()  # re-raises a writing error here
                done += 1
                on_done(done, job, result)

        items = iter(loader)
        for k, job in enumerate(jobs, 1):
            stage = functools.partial(on_stage, k, job) if on_stage else None
            if stage and prealign:
                stage("prealign", 1, 1)
            _, image, prepared = next(items)  # in order: the k-th item is this job's
            if image is None:
                raise prepared
            result = transfer(
                model,
                image,
                device,
                prealign=prealign,
                refine_steps=refine_steps,
                prepared=prepared,
                qc=qc,
                extras=extras,
                on_stage=stage,
                qc_cycle=qc_cycle,
            )
            if result.qc is not None:
                result.qc["target"] = str(job.target)
            pending.append((writer.submit(write, job, result), job, result))
            finish_written(block=False)
        finish_written(block=True)
    return time.monotonic() - started

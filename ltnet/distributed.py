"""Running under ``torchrun``: the process group, this process's rank, and a few collective helpers.

In a plain process (no ``torchrun`` variables, or a world of one) everything here
is a no-op: rank 0 of a world of 1. Under ``torchrun --nproc-per-node N`` (and
``--nnodes`` for several machines) ``session`` joins the process group: NCCL when
the device is a GPU, gloo on CPUs. A separate gloo group carries the small
control messages (stop requests, gathered QC rows), so they never touch the GPU.
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints and progress."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def shard(self, items: list) -> list:
        """This rank's share of ``items``: ``items[rank::world_size]``."""
        return items[self.rank :: self.world_size]


def from_environment() -> Ranks:
    """The ranks ``torchrun`` set in the environment, or rank 0 of 1 outside it."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return Ranks()
    return Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))


_control = None  # the gloo group for CPU-side messages while a session is open


@contextmanager
def session(ranks: Ranks, device: torch.device):
    """Join the process group for the ``with`` block (NCCL for CUDA ``device``, gloo for CPU); no-op for one process."""
    global _control
    if not ranks.parallel:
        yield ranks
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend=backend,
        rank=ranks.rank,
        world_size=ranks.world_size,
        device_id=device if device.type == "cuda" else None,
    )
    _control = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
    try:
        yield ranks
    finally:
        _control = None
        dist.destroy_process_group()


def active() -> bool:
    """Whether a process group with more than one process is open."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any (so all ranks stop at the same iteration)."""
    if not active():
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_control)
    return bool(value.item())


def gather_lists(items: list) -> list:
    """Every rank's ``items`` (picklable) concatenated in rank order, on every rank."""
    if not active():
        return list(items)
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(items), group=_control)
    return [item for part in gathered for item in part]


def barrier() -> None:
    if active():
        dist.barrier(group=_control)

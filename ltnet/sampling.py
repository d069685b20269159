"""Which scans each iteration trains on, the same on one process or many.

An iteration trains on a *global batch* of ``G = world_size × batch_size`` pairs
(atlas, scan). Slot ``j`` of the global batch draws its scan from its own shard of
the cohort, ``scans[j::G]`` (all scans when the cohort is smaller than ``G``).
Every rank draws all ``G`` slots from the same seeded generator, so the sequence
does not depend on how the slots are spread over processes; rank ``r`` then keeps
slots ``r·B .. r·B + B - 1``. A one-process run with ``batch_size = G`` therefore
sees exactly the pairs of a ``G``-process run with ``batch_size = 1``, and each
rank only ever needs the scans of its own slots.
"""

import torch


def slot_shards(n_scans: int, global_batch: int) -> list[list[int]]:
    """For each slot of the global batch, the scan indices it draws from."""
    if n_scans < global_batch:
        return [list(range(n_scans))] * global_batch
    return [list(range(j, n_scans, global_batch)) for j in range(global_batch)]


def rank_slots(rank: int, batch_size: int) -> range:
    """The global-batch slots that ``rank`` trains on."""
    return range(rank * batch_size, (rank + 1) * batch_size)


def needed_scans(n_scans: int, batch_size: int, rank: int, world_size: int) -> set[int]:
    """Indices of the scans ``rank`` can ever draw (load only these)."""
    shards = slot_shards(n_scans, batch_size * world_size)
    return {i for slot in rank_slots(rank, batch_size) for i in shards[slot]}


def draw(generator: torch.Generator, shards: list[list[int]]) -> list[int]:
    """One scan index per slot; advances ``generator`` by the same amount on every rank."""
    return [shard[int(torch.randint(len(shard), (1,), generator=generator))] for shard in shards]

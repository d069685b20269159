"""A transfer the QC calls "likely failed" is tried again from other pre-alignments, and the best is kept.

The affine pre-alignment samples its metric at random points (``ltnet.data.prealign``); on a scan where it ends in
a poor optimum, another draw of points often finds the right one. The QC's score (``ltnet.qc``) tells the tries
apart: it compares the image match where the labels went with the model's reference. Only a transfer whose
verdict is "likely failed" is tried again, so the others cost nothing more.
"""

from collections.abc import Callable

#: The pre-alignment seeds tried after the first (seed 0), in order, until a try is no longer "likely failed".
RETRY_SEEDS = (1, 2, 3)
FAILED = "likely failed"


def keep_best_alignment(first, transfer_with_seed: Callable[[int], object], seeds=RETRY_SEEDS):
    """``first`` (a ``TransferResult`` with its QC, pre-alignment seed 0) if its verdict is not "likely failed";
    otherwise the best by QC score of ``first`` and ``transfer_with_seed(seed)`` for ``seeds`` in order, stopping at
    the first try that is not "likely failed". The result's QC then lists every try under ``prealign_tries``
    (``{"seed", "score", "verdict"}``, in the order tried)."""
    if first.qc is None or first.qc["verdict"] != FAILED:
        return first
    tries = [(0, first)]
    for seed in seeds:
        tries.append((seed, transfer_with_seed(seed)))
        if tries[-1][1].qc["verdict"] != FAILED:
            break
    best = max((result for _, result in tries), key=lambda result: result.qc["score"])
    best.qc["prealign_tries"] = [
        {"seed": seed, "score": result.qc["score"], "verdict": result.qc["verdict"]} for seed, result in tries
    ]
    return best

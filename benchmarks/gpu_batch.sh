#!/usr/bin/env bash
# One prepared run for a GPU lent for minutes: every GPU measurement of docs/BENCHMARKS.md's "Training on a GPU" in
# one command, side by side, each part with its own deadline so what finished comes back.
#
#   1. the transfer's speed at 160x192x224 (benchmarks/speed.py) and where it goes (benchmarks/profile_transfer.py),
#      alone on the GPU;
#   2. side by side (benchmarks/budget_train.py): the hippocampus recipe trained on the GPU with the seeds of its
#      CPU twin in the accuracy table, and the long comparison (VoxelMorph, the recipe with its teaching stage,
#      --paper; two seeds each) at the most iterations that fit, the same for all, with snapshots;
#      beside them, ltnet distill of the bundled model at a larger budget, and the IBSR distillation
#      (benchmarks/distill.py --data ibsr18), one process per atlas;
#   3. every snapshot scored where it is (benchmarks/long_report.py, the twins too), the IBSR comparison written.
#
# On one H200 with 16 cores this load made a hippocampus training step 0.05-0.12 s and each training's preparation
# of its 59 scans 85 s (twice: timing run and real run), so the long runs reached 1200 iterations and the IBSR
# distillations missed their deadline (docs/BENCHMARKS.md, "Training on a GPU"): give a lease fewer trainings.
#
# Needs ../shared/data, or a copy in ./shared/data; brings back in $OUT (default runs/gpu_out) at most 8 files: the
# logs and scores in results.tgz, and the models that are scored elsewhere (tar files). The sizes below are the
# GPU's; smaller ones through the environment make a quick check on a CPU, e.g.
#   DEVICE=cpu BUDGET_S=60 CALIBRATE=2 DISTILL_ITERATIONS=3 SOURCE_ITERATIONS=3 IBSR_ITERATIONS=3 \
#   TWIN_ITERATIONS=3 SPEED_GRID="40 48 40" bash benchmarks/gpu_batch.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_out}
WORK=${WORK:-runs/gpu}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-260}              # wall seconds of the side-by-side trainings, start-up included
CALIBRATE=${CALIBRATE:-40}
TWIN_ITERATIONS=${TWIN_ITERATIONS:-1500}
DISTILL_ITERATIONS=${DISTILL_ITERATIONS:-6000}
SOURCE_ITERATIONS=${SOURCE_ITERATIONS:-1000}
IBSR_ITERATIONS=${IBSR_ITERATIONS:-2000}
SPEED_GRID=${SPEED_GRID:-160 192 224}
BACKGROUND_S=${BACKGROUND_S:-$((BUDGET_S + 100))}  # the distillations' deadline, from their start
SCORE_S=${SCORE_S:-100}
TARGETS_EVERY=${TARGETS_EVERY:-1}  # score every K-th target of the long runs (quick checks)
LONG_RECIPES=${LONG_RECIPES:-voxelmorph_scan recipe_scan paper_scan}
IBSR_ATLASES=${IBSR_ATLASES:-IBSR_01 IBSR_03 IBSR_07 IBSR_08}
mkdir -p "$OUT" "$WORK"
[ -e ../shared/data ] || ln -s "$PWD/shared" ../shared
started=$SECONDS
stamp() { echo "[$((SECONDS - started)) s] $*"; }
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore

stamp "speed at $SPEED_GRID"
# shellcheck disable=SC2086
timeout 75 $PY benchmarks/speed.py --measure ltnet_transfer --grid $SPEED_GRID --device "$DEVICE" --repeats 3 \
    >"$WORK/speed_transfer.json" 2>"$WORK/speed.err" || stamp "speed: failed or cut ($?)"
# shellcheck disable=SC2086
timeout 45 $PY benchmarks/profile_transfer.py --grid $SPEED_GRID --device "$DEVICE" --out "$WORK/profile_transfer.jsonl" \
    >"$WORK/profile_transfer.txt" 2>&1 || stamp "profile: failed or cut ($?)"
nvidia-smi >"$WORK/nvidia-smi.txt" 2>&1

stamp "distillations in the background"
cohort="$WORK/distill/cohort_hippocampus_007"
mkdir -p "$cohort"
for scan in ../shared/data/hippocampus/images/*.nii.gz; do
    case "$scan" in *hippocampus_007.nii.gz) ;; *) ln -sf "$(realpath "$scan")" "$cohort/" ;; esac
done
pids=()
for seed in 0 1; do
    OMP_NUM_THREADS=1 timeout -s TERM "$BACKGROUND_S" $PY -m ltnet distill --model ltnet/sample/demo_model.pt \
        --images "$cohort" --out "$WORK/distill/distilled_hippocampus_007_3_${DISTILL_ITERATIONS}_seed$seed.pt" \
        --iterations "$DISTILL_ITERATIONS" --refine 3 --seed "$seed" --device "$DEVICE" --progress jsonl \
        >"$WORK/distill_seed$seed.log" 2>&1 &
    pids+=($!)
done
for atlas in $IBSR_ATLASES; do
    OMP_NUM_THREADS=1 timeout -s TERM "$BACKGROUND_S" $PY benchmarks/distill.py --data ibsr18 --work "$WORK/ibsr" \
        --atlas "$atlas" --iterations "$IBSR_ITERATIONS" --source-iterations "$SOURCE_ITERATIONS" \
        --device "$DEVICE" --no-write >"$WORK/ibsr_$atlas.log" 2>&1 &
    pids+=($!)
done

stamp "trainings side by side"
OMP_NUM_THREADS=1 timeout $((BUDGET_S + 200)) $PY benchmarks/budget_train.py --device "$DEVICE" --work "$WORK" \
    --budget-s "$BUDGET_S" --calibrate "$CALIBRATE" --same-iterations --snapshots 2 \
    --job "hippocampus:ltnet_scan:0:i$TWIN_ITERATIONS" --job "hippocampus:ltnet_scan:1:i$TWIN_ITERATIONS" \
    $(for recipe in $LONG_RECIPES; do printf -- "--job hippocampus:%s:%s " "$recipe" 0 "$recipe" 1; done) \
    >"$WORK/budget.log" 2>&1 ||
    stamp "budget_train: failed or cut ($?)"

stamp "scoring every snapshot, and the recipe's GPU twins"
read -r long every < <($PY -c "import json
runs = [r for r in json.load(open('$WORK/budget.json')) if not r['job'].split(':')[-1].startswith('i')]
print(max([r['iterations'] for r in runs] or [0]), max([r['snapshot_every'] for r in runs] or [0]))" 2>/dev/null ||
    echo 0 0)
[ "$every" -gt 0 ] || every=$long
echo "$long $every" >"$WORK/long_iterations.txt"
score() {  # score(stem, iterations, every): each snapshot of $WORK/hippocampus/<stem>.pt on the 59 targets
    local final="$WORK/hippocampus/${1}_it$2.pt"
    [ -e "$WORK/hippocampus/$1.pt" ] && [ ! -e "$final" ] && cp "$WORK/hippocampus/$1.pt" "$final"
    OMP_NUM_THREADS=2 timeout "$SCORE_S" $PY benchmarks/long_report.py --work "$WORK/hippocampus" --run "$1=$1" \
        --iterations "$2" --every "$3" --targets-every "$TARGETS_EVERY" --no-write >"$WORK/score_$1.log" 2>&1
}
scoring=()
for seed in 0 1; do
    score "ltnet_scan_hippocampus_007_seed${seed}_i$TWIN_ITERATIONS" "$TWIN_ITERATIONS" "$TWIN_ITERATIONS" &
    scoring+=($!)
    [ "$long" -gt 0 ] && for recipe in $LONG_RECIPES; do
        score "${recipe}_hippocampus_007_seed$seed" "$long" "$every" &
        scoring+=($!)
    done
done

stamp "waiting for the distillations"
wait "${pids[@]}"
# shellcheck disable=SC2046
if [ -n "$IBSR_ATLASES" ] &&
    ls $(for atlas in $IBSR_ATLASES; do echo "$WORK/ibsr/scores_${atlas}_3_$IBSR_ITERATIONS.csv"; done) >/dev/null; then
    stamp "the IBSR comparison"
    # shellcheck disable=SC2046
    timeout 60 $PY benchmarks/distill.py --data ibsr18 --work "$WORK/ibsr" --iterations "$IBSR_ITERATIONS" \
        --source-iterations "$SOURCE_ITERATIONS" --device "$DEVICE" $(printf -- "--atlas %s " $IBSR_ATLASES) \
        >"$WORK/ibsr_all.log" 2>&1 &&
        cp docs/benchmarks/distill_ibsr18.csv "$WORK/" && cp docs/BENCHMARKS.md "$WORK/"
fi
wait "${scoring[@]}"

stamp "packing"
tar czf "$OUT/results.tgz" --exclude='*.pt' --exclude='cohort*' "$WORK" 2>/dev/null
# the models scored elsewhere too, less their optimizer state (the size of the files that come back is limited)
mkdir -p "$WORK/back"
$PY - "$WORK/back" "$WORK"/hippocampus/*_seed[01].pt "$WORK"/distill/distilled_*.pt <<'PYTHON'
import sys
from pathlib import Path

import torch

for path in map(Path, sys.argv[2:]):
    model = torch.load(path, weights_only=True, map_location="cpu")
    for part in (model, model.get("segmenter") or {}):
        training = part.get("training", {})
        for key in [key for key in training if key.startswith("optimizer")]:
            del training[key]
    torch.save(model, Path(sys.argv[1]) / path.name)
PYTHON
for recipe in $LONG_RECIPES; do
    tar cf "$OUT/long_$recipe.tar" -C "$WORK/back" $(cd "$WORK/back" && ls "$recipe"_*.pt 2>/dev/null)
done
cp "$WORK"/back/distilled_*.pt "$OUT/" 2>/dev/null
stamp "done"
ls -la "$OUT"

#!/usr/bin/env bash
# One GPU study in one device call, every run in one wave: by default the converged twin
# (options/study/gpu_edsr_x2_converged.yml); STUDY=options/study/gpu_edsr_t91_x2.yml runs the earlier one.
#
#   here, once:   bash tools/gpu_study.sh wheels            cp312 wheels the bare GPU machine lacks -> .gpu/whl
#                                                           (basicsr, lmdb, addict; this package runs from the tree)
#                 bash tools/gpu_study.sh pack DATA_DIR     HR images of T91, Set5, Set14, BSD100 -> .gpu/data,
#                                                           loss-value and sobel scores (made here, on CPU) -> .gpu/scores
#   there:        bash tools/gpu_study.sh run               install the wheels, prepare the data, run the study
#                                                           (one shard per run), tables, plots.tar -> $OUT
# The device tool carries .gpu (git-ignored; about 25 MB): run(command="bash tools/gpu_study.sh run", carry=[".gpu"]).
# pack reuses scores made before with SCORES=path/to/scores.csv and SOBEL=path/to/scores.csv (e.g. the CPU
# study's), else runs tools/prepare_cpu_edsr_study.sh up to its scores (STAGE=scores; PROXY_ITERS shortens the proxy).
# run takes ITERS (one budget, or one per budget of a study with several: "3000 4500 6000"), VAL_EVERY, BATCH,
# SEEDS ("0 1 2"), NUM_GPU (1), SHARDS (runs training at once; one per run by default, fewer on a smaller
# device) and WORK (/tmp/gpu_study) from the environment: the suite runs it on CPU at ITERS="1 2 3" and
# SHARDS=2 (tests/test_gpu_study.py).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PACK=${PACK:-$REPO/.gpu}
STUDY=$REPO/${STUDY:-options/study/gpu_edsr_x2_converged.yml}
# the pool and benchmarks are made by tools/prepare_cpu_edsr_study.sh, the CPU study's own, so the scores' keys match
PY=${PYTHON:-python3}

wheels() {  # this package itself runs from the working tree that travels (PYTHONPATH), not from a wheel
  rm -rf "$PACK/whl" && mkdir -p "$PACK/whl"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$PACK/whl" lmdb addict
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$PACK/whl" basicsr==1.4.2
}

pack() {
  local data=${1:?pack needs the folder holding T91/ Set5/ Set14/ BSD100/, each with HR/}
  local set missing=()
  for set in T91 Set5 Set14 BSD100; do  # every set checked before anything is copied
    compgen -G "$data/$set/HR/*" >/dev/null || missing+=("$data/$set/HR")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "pack: no images in ${missing[*]}: DATA_DIR must hold T91/ Set5/ Set14/ BSD100/, each with HR/ images" >&2
    return 2
  fi
  for set in T91 Set5 Set14 BSD100; do
    mkdir -p "$PACK/data/$set/HR" && cp "$data/$set/HR"/* "$PACK/data/$set/HR/"
  done
  mkdir -p "$PACK/scores"
  if [ -n "${SCORES:-}${SOBEL:-}" ]; then
    [ -n "${SCORES:-}" ] && [ -n "${SOBEL:-}" ] || { echo "give both SCORES and SOBEL, or neither" >&2; return 2; }
    cp "$SCORES" "$PACK/scores/loss_value.csv" && cp "$SOBEL" "$PACK/scores/sobel.csv"
    return
  fi
  local scratch  # the CPU study's own preparation, up to its scores
  scratch=$(mktemp -d)
  (cd "$scratch" && STAGE=scores PYTHON="$PY" bash "$REPO/tools/prepare_cpu_edsr_study.sh" "$PACK/data" >/dev/null)
  cp "$scratch/experiments/score_t91_x2/scores.csv" "$PACK/scores/loss_value.csv"
  cp "$scratch/experiments/score_sobel_t91_x2/scores.csv" "$PACK/scores/sobel.csv"
  rm -rf "$scratch"
}

run() {
  local work=${WORK:-/tmp/gpu_study} out=${OUT:-${WORK:-/tmp/gpu_study}/out} started=$SECONDS
  for need in "$PACK"/data/{T91,Set5,Set14,BSD100}/HR "$PACK/scores/loss_value.csv" "$PACK/scores/sobel.csv"; do
    [ -e "$need" ] || { echo "$need is missing: run 'bash tools/gpu_study.sh pack DATA_DIR' first" >&2; return 2; }
  done
  if [ -n "${SHARDS:-}" ] && ! [[ $SHARDS =~ ^[1-9][0-9]*$ ]]; then
    echo "SHARDS must be a whole number of at least 1, got '$SHARDS'" >&2; return 2
  fi
  if compgen -G "$PACK/whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$PACK"/whl/*.whl
  fi
  export PYTHONPATH=$REPO:/tmp/site${PYTHONPATH:+:$PYTHONPATH}  # this package from the working tree
  mkdir -p "$work" "$out" && cd "$work"
  ln -sfn "$REPO/options" options
  "$PY" - "$STUDY" <<'PY'
import os, sys, yaml
study = yaml.safe_load(open(sys.argv[1]))
study['num_gpu'] = int(os.environ.get('NUM_GPU', study['num_gpu']))
budget = study['budget']
if os.environ.get('ITERS'):  # new budgets in the order of the study's; compute_arms and val_every follow them
    old = budget['total_iter'] if isinstance(budget['total_iter'], list) else [budget['total_iter']]
    new = [int(i) for i in os.environ['ITERS'].split()]
    if len(new) != len(old):
        sys.exit(f"ITERS gives {len(new)} budgets, {sys.argv[1]} has {len(old)}: {old}")
    moved = dict(zip(sorted(old), sorted(new)))
    budget['total_iter'] = sorted(new) if isinstance(budget['total_iter'], list) else new[0]
    if isinstance(budget.get('compute_arms'), dict):
        budget['compute_arms'] = {arm: [moved[b] for b in its] for arm, its in budget['compute_arms'].items()}
    if 'val_every' in budget:
        budget['val_every'] = max(1, int(os.environ.get('VAL_EVERY', min(new))))
study['budget']['batch_size'] = int(os.environ.get('BATCH', study['budget']['batch_size']))
study['seeds'] = [int(s) for s in os.environ.get('SEEDS', ' '.join(map(str, study['seeds']))).split()]
open('study.yml', 'w').write(yaml.safe_dump(study, sort_keys=False))
PY
  # the data after the study file: a bad ITERS or SEEDS stops before minutes of preparation
  STAGE=data SRPRUNE="$PY -m srprune_basicsr" PYTHON="$PY" bash "$REPO/tools/prepare_cpu_edsr_study.sh" "$PACK/data"
  mkdir -p scores && cp "$PACK/scores/loss_value.csv" "$PACK/scores/sobel.csv" scores/
  echo "prepared in $((SECONDS - started)) s"
  local runs
  # the study folder is claimed once here, before the shards start side by side
  "$PY" -c "from srprune_basicsr.study.runner import Study, load_study
s = Study(load_study('study.yml')); s.claim_root(); s.check_inputs(); open('runs.txt', 'w').write(str(len(s.pairs())))"
  runs=$(cat runs.txt)
  local shards=${SHARDS:-$runs}
  ((shards <= runs)) || shards=$runs
  local pids=()
  for i in $(seq 0 $((shards - 1))); do
    OMP_NUM_THREADS=1 "$PY" -m srprune_basicsr study -opt study.yml --shard "$i/$shards" >"shard_$i.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  # the complete tables once, from the finished runs (--tables trains nothing, so a failed shard costs no time)
  "$PY" -m srprune_basicsr study -opt study.yml --tables >study.log 2>&1 || failed=1
  local root
  root=studies/$("$PY" -c "import yaml; print(yaml.safe_load(open('study.yml'))['name'])")
  cp "$root/study.csv" "$root/study_images.csv" "$root/study.md" "$out/" 2>/dev/null || true
  if [ -f "$root/study_curves.csv" ]; then cp "$root/study_curves.csv" "$out/"; fi
  (cd "$root" && tar -cf "$out/plots.tar" ./*.png) 2>/dev/null || true  # one file: at most 8 come back
  { echo "$runs runs, $((SECONDS - started)) s in all"; cat study.log; tail -n 20 shard_*.log; } >"$out/log.txt"
  echo "$runs runs in $((SECONDS - started)) s -> $out"
  return $failed
}

case "${1:-}" in
  wheels) wheels ;;
  pack) pack "${2:-}" ;;
  run) run ;;
  *) echo "usage: $0 wheels | pack DATA_DIR | run" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# One GPU study in one device call: options/study/gpu_edsr_t91_x2.yml, every run in one wave.
#
#   here, once:   bash tools/gpu_study.sh wheels            cp312 wheels the bare GPU machine lacks -> .gpu/whl
#                                                           (basicsr, lmdb, addict; this package runs from the tree)
#                 bash tools/gpu_study.sh pack DATA_DIR     HR images of T91, Set5, Set14, BSD100 -> .gpu/data,
#                                                           loss-value and sobel scores (made here, on CPU) -> .gpu/scores
#   there:        bash tools/gpu_study.sh run               install the wheels, prepare the data, run the study
#                                                           (one shard per run), tables, plots.tar -> $OUT
# The device tool carries .gpu (git-ignored; about 25 MB): run(command="bash tools/gpu_study.sh run", carry=[".gpu"]).
# pack reuses scores made before with SCORES=path/to/scores.csv and SOBEL=path/to/scores.csv (e.g. the CPU
# study's, from tools/prepare_cpu_edsr_study.sh), else trains the SRCNN proxy (PROXY_ITERS, 400) and scores.
# run takes ITERS, BATCH, SEEDS ("0 1 2"), NUM_GPU (1) and WORK (/tmp/gpu_study) from the environment: the suite runs
# it on CPU at ITERS=2 (tests/test_gpu_study.py).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PACK=${PACK:-$REPO/.gpu}
STUDY=$REPO/options/study/gpu_edsr_t91_x2.yml
PREPARE=(--scales 2 --crop 48 --step 192 --thresh 24 --lmdb)  # the CPU study's pool: the scores' keys match
PY=${PYTHON:-python3}

wheels() {  # this package itself runs from the working tree that travels (PYTHONPATH), not from a wheel
  rm -rf "$PACK/whl" && mkdir -p "$PACK/whl"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$PACK/whl" lmdb addict
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$PACK/whl" basicsr==1.4.2
}

pack() {
  local data=${1:?pack needs the folder holding T91/ Set5/ Set14/ BSD100/}
  for set in T91 Set5 Set14 BSD100; do
    mkdir -p "$PACK/data/$set" && cp "$data/$set/HR"/* "$PACK/data/$set/"
  done
  mkdir -p "$PACK/scores"
  if [ -n "${SCORES:-}${SOBEL:-}" ]; then
    [ -n "${SCORES:-}" ] && [ -n "${SOBEL:-}" ] || { echo "give both SCORES and SOBEL, or neither" >&2; return 2; }
    cp "$SCORES" "$PACK/scores/loss_value.csv" && cp "$SOBEL" "$PACK/scores/sobel.csv"
    return
  fi
  local scratch
  scratch=$(mktemp -d)
  score_here "$scratch"
  cp "$scratch/experiments/score_loss_value/scores.csv" "$PACK/scores/loss_value.csv"
  cp "$scratch/experiments/score_sobel/scores.csv" "$PACK/scores/sobel.csv"
  rm -rf "$scratch"
}

score_here() {  # in folder $1: the pool, the SRCNN proxy, its loss-value scores and sobel scores
  cd "$1"
  srprune prepare --hr "$PACK/data/T91" --out pool "${PREPARE[@]}" >/dev/null
  srprune prepare --benchmark --hr "$PACK/data/Set5" --out Set5 --scales 2 >/dev/null
  "$PY" - "$REPO" "${PROXY_ITERS:-400}" <<'PY'
import sys, yaml
repo, iters = sys.argv[1], int(sys.argv[2])
gt, lq = 'pool/HR_sub.lmdb', 'pool/LR_bicubic_X2_sub.lmdb'
proxy = yaml.safe_load(open(f'{repo}/srprune_basicsr/presets/demo/train_SRCNN_x2_demo.yml'))
proxy['name'] = 'proxy'
proxy['datasets']['train'].update(dataroot_gt=gt, dataroot_lq=lq, gt_size=48, num_worker_per_gpu=0,
                                  batch_size_per_gpu=min(16, proxy['datasets']['train']['batch_size_per_gpu']))
proxy['datasets']['val'].update(dataroot_gt='Set5/GTmod12', dataroot_lq='Set5/LRbicx2')
proxy['train']['total_iter'] = iters
proxy['val']['val_freq'] = iters
proxy['logger'].update(save_checkpoint_freq=iters, use_tb_logger=False)
open('proxy.yml', 'w').write(yaml.safe_dump(proxy, sort_keys=False))
for name, template in (('loss_value', 'score_SRCNN_x2'), ('sobel', 'score_sobel_x2')):
    score = yaml.safe_load(open(f'{repo}/options/score/{template}.yml'))
    score['name'] = f'score_{name}'
    score['dataset'].update(dataroot_gt=gt, dataroot_lq=lq)
    if name == 'loss_value':
        score['path']['pretrain_network_g'] = 'experiments/proxy/models/net_g_latest.pth'
        score['network_g'] = proxy['network_g']
    open(f'{name}.yml', 'w').write(yaml.safe_dump(score, sort_keys=False))
PY
  srprune train -opt proxy.yml >/dev/null
  srprune score -opt loss_value.yml >/dev/null
  srprune score -opt sobel.yml >/dev/null
  cd - >/dev/null
}

run() {
  local work=${WORK:-/tmp/gpu_study} out=${OUT:-${WORK:-/tmp/gpu_study}/out} started=$SECONDS
  if compgen -G "$PACK/whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$PACK"/whl/*.whl
  fi
  export PYTHONPATH=$REPO:/tmp/site${PYTHONPATH:+:$PYTHONPATH}  # this package from the working tree
  mkdir -p "$work" "$out" && cd "$work"
  ln -sfn "$REPO/options" options
  local workers
  workers=$(nproc)
  [ -d datasets/t91_x2 ] || "$PY" -m srprune_basicsr prepare --hr "$PACK/data/T91" --out datasets/t91_x2 \
    "${PREPARE[@]}" --workers "$workers"
  for b in Set5 Set14 BSD100; do
    [ -d "datasets/$b" ] || "$PY" -m srprune_basicsr prepare --benchmark --hr "$PACK/data/$b" --out "datasets/$b" \
      --scales 2
  done
  mkdir -p scores && cp "$PACK/scores/loss_value.csv" "$PACK/scores/sobel.csv" scores/
  "$PY" - "$STUDY" <<'PY'
import os, sys, yaml
study = yaml.safe_load(open(sys.argv[1]))
study['num_gpu'] = int(os.environ.get('NUM_GPU', study['num_gpu']))
study['budget']['total_iter'] = int(os.environ.get('ITERS', study['budget']['total_iter']))
study['budget']['batch_size'] = int(os.environ.get('BATCH', study['budget']['batch_size']))
study['seeds'] = [int(s) for s in os.environ.get('SEEDS', ' '.join(map(str, study['seeds']))).split()]
open('study.yml', 'w').write(yaml.safe_dump(study, sort_keys=False))
PY
  echo "prepared in $((SECONDS - started)) s"
  local runs
  # the study folder is claimed once here, before the shards start side by side
  "$PY" -c "from srprune_basicsr.study.runner import Study, load_study
s = Study(load_study('study.yml')); s.claim_root(); s.check_inputs(); open('runs.txt', 'w').write(str(len(s.pairs())))"
  runs=$(cat runs.txt)
  local pids=()
  for i in $(seq 0 $((runs - 1))); do
    OMP_NUM_THREADS=1 "$PY" -m srprune_basicsr study -opt study.yml --shard "$i/$runs" >"shard_$i.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  # the complete tables once, from the finished runs (--tables trains nothing, so a failed shard costs no time)
  "$PY" -m srprune_basicsr study -opt study.yml --tables >study.log 2>&1 || failed=1
  local root
  root=studies/$("$PY" -c "import yaml; print(yaml.safe_load(open('study.yml'))['name'])")
  cp "$root/study.csv" "$root/study_images.csv" "$root/study.md" "$out/" 2>/dev/null || true
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

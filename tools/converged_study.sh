#!/usr/bin/env bash
# The converged CPU study (options/study/cpu_edsr_x2_converged.yml), run over several sittings.
# Its runs are long (about 16 minutes each at 16,000 iterations on one core), so a sitting keeps what
# it finished: `save` copies every finished run's result file into docs/results/cpu_edsr_x2_converged/runs/
# (committed with the tables), and `restore` puts them back into a fresh checkout's study folder, where
# the study skips them (each is checked against its recipe, so a changed option file is refused).
# Usage, in the repository folder with the package installed:
#   bash tools/converged_study.sh data DATA_DIR   # the pool and benchmarks (STAGE=data of prepare_cpu_edsr_study.sh)
#   bash tools/converged_study.sh restore         # committed runs -> studies/study_cpu_edsr_x2_converged/results
#   bash tools/converged_study.sh run             # two shards, one thread each: the budget curve, then every arm
#   bash tools/converged_study.sh save            # finished runs and the tables -> docs/results/cpu_edsr_x2_converged
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OPT=options/study/cpu_edsr_x2_converged.yml
NAME=study_cpu_edsr_x2_converged
DOCS=docs/results/cpu_edsr_x2_converged
SRPRUNE=${SRPRUNE:-srprune}
PY=${PYTHON:-python}
SHARDS=${SHARDS:-2}
cd "$REPO"
case "${1:-}" in
  data)
    STAGE=data bash tools/prepare_cpu_edsr_study.sh "${2:?give the folder holding T91/ Set5/ Set14/ BSD100/}" ;;
  restore)
    # the study marks its own folder first (a folder it did not mark is refused), then the runs go in
    "$PY" -c "import sys; from srprune_basicsr.study.runner import Study, load_study; Study(load_study(sys.argv[1])).claim_root()" "$OPT"
    mkdir -p "studies/$NAME/results"
    shopt -s nullglob
    for run in "$DOCS"/runs/*.json; do
      [ -e "studies/$NAME/results/$(basename "$run")" ] || cp "$run" "studies/$NAME/results/"
    done
    echo "restored $(ls "studies/$NAME/results" | wc -l) finished runs" ;;
  run)
    # a barrier between the phases: shards numbered over other arm lists must not train the same pair at once
    for phase in 'full*' ''; do
      pids=()
      for ((i = 0; i < SHARDS; i++)); do
        OMP_NUM_THREADS=1 $SRPRUNE study -opt "$OPT" ${phase:+--arms "$phase"} --shard "$i/$SHARDS" &
        pids+=($!)
      done
      for pid in "${pids[@]}"; do wait "$pid"; done
    done ;;
  save)
    mkdir -p "$DOCS/runs"
    shopt -s nullglob
    for run in "studies/$NAME/results"/*.json; do cp "$run" "$DOCS/runs/"; done
    $SRPRUNE study -opt "$OPT" --tables
    for f in study.csv study_images.csv study_curves.csv study.md; do
      [ -f "studies/$NAME/$f" ] && cp "studies/$NAME/$f" "$DOCS/"
    done
    cp "studies/$NAME"/*.png "$DOCS/"
    echo "saved $(ls "$DOCS/runs" | wc -l) runs and the tables to $DOCS" ;;
  *)
    echo "usage: $0 data DATA_DIR | restore | run | save" >&2; exit 2 ;;
esac

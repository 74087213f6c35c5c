#!/usr/bin/env bash
# The converged CPU study (options/study/cpu_edsr_x2_converged.yml) and its fresh-seed twin, run over
# several sittings. Its runs are long (about 16 minutes each at 16,000 iterations on one core), so a
# sitting keeps what it finished: `save` copies every finished run's result file into
# docs/results/<study name without study_>/runs/ (committed with the tables), and `restore` puts them back
# into a fresh checkout's study folder, where the study skips them (each is checked against its recipe, so
# a changed option file is refused).
# Usage, in the repository folder with the package installed:
#   bash tools/converged_study.sh data DATA_DIR   # the pool and benchmarks (STAGE=data of prepare_cpu_edsr_study.sh)
#   bash tools/converged_study.sh restore         # committed runs -> studies/study_cpu_edsr_x2_converged/results
#   bash tools/converged_study.sh run [ARM...]    # two shards, one thread each: the budget curve, then every arm
#                                                 # (or only the arms named, e.g. 'full~16000it' 'sobel@0.25~16000it')
#   bash tools/converged_study.sh save            # finished runs and the tables -> docs/results/cpu_edsr_x2_converged
#   bash tools/converged_study.sh pool            # the study and its _confirm twin, seeds pooled, for the arms both
#                                                 # ran -> docs/results/cpu_edsr_x2_converged_pooled (restore both first)
# STUDY=options/study/cpu_edsr_x2_converged_confirm.yml does the same for the fresh seeds 3-5
# (saved to the docs/results folder named after it, with _confirm); SHARDS (2) sets the runs trained at once.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OPT=${STUDY:-options/study/cpu_edsr_x2_converged.yml}
SRPRUNE=${SRPRUNE:-srprune}
PY=${PYTHON:-python}
SHARDS=${SHARDS:-2}
cd "$REPO"
[ -f "$OPT" ] || { echo "STUDY: no option file $OPT (a path in $REPO)" >&2; exit 2; }
[[ "$SHARDS" =~ ^[1-9][0-9]*$ ]] || { echo "SHARDS must be a whole number of at least 1, got '$SHARDS'" >&2; exit 2; }
NAME=$("$PY" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$OPT" 2>/dev/null) ||
  { echo "STUDY: $OPT has no name: (not a study option file?)" >&2; exit 2; }
DOCS=docs/results/${NAME#study_}

train_shards() {  # every shard of the arms given (all arms if none), side by side; fails after all have ended
  local pids=() i failed=0 arms=()
  [ $# -gt 0 ] && arms=(--arms "$@")
  for ((i = 0; i < SHARDS; i++)); do
    OMP_NUM_THREADS=1 $SRPRUNE study -opt "$OPT" "${arms[@]}" --shard "$i/$SHARDS" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  return $failed
}

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
    shift
    if [ $# -gt 0 ]; then
      train_shards "$@"
    else  # a barrier between the phases: shards numbered over other arm lists must not train one pair at once
      train_shards 'full*'
      train_shards
    fi ;;
  save)
    mkdir -p "$DOCS/runs"
    shopt -s nullglob
    for run in "studies/$NAME/results"/*.json; do cp "$run" "$DOCS/runs/"; done
    $SRPRUNE study -opt "$OPT" --tables
    for f in study.csv study_images.csv study_curves.csv study.md; do
      if [ -f "studies/$NAME/$f" ]; then cp "studies/$NAME/$f" "$DOCS/"; fi
    done
    for f in "studies/$NAME"/*.png; do cp "$f" "$DOCS/"; done
    echo "saved $(ls "$DOCS/runs" | wc -l) runs and the tables to $DOCS" ;;
  pool)
    CONFIRM=${CONFIRM:-${OPT%.yml}_confirm.yml}
    [ -f "$CONFIRM" ] || { echo "CONFIRM: no option file $CONFIRM (the fresh-seed twin of $OPT)" >&2; exit 2; }
    $SRPRUNE study -opt "$OPT" --pool "$CONFIRM" --pool-root "studies/${NAME}_pooled"
    mkdir -p "${DOCS}_pooled"
    for f in "studies/${NAME}_pooled"/study*.csv "studies/${NAME}_pooled"/*.md "studies/${NAME}_pooled"/*.png; do
      cp "$f" "${DOCS}_pooled/"
    done
    echo "saved the pooled tables to ${DOCS}_pooled" ;;
  *)
    echo "usage: $0 data DATA_DIR | restore | run [ARM...] | save | pool" >&2; exit 2 ;;
esac

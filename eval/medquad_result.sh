#!/usr/bin/env bash
# The committed result (eval/medquad-result/): SmolLM2-135M-Instruct on MedQuAD. The recipe (every training row,
# 5 epochs) and plain Axolotl trained on the same rows with the same schedule come from lever round 4
# (recipes/smollm2-135m/levers/round-4.yml); the base model and plain Axolotl in its own 1-epoch setup (neither
# depends on the recipe) from round 3 (round-3.yml). All answer the first 1,000 test questions with make eval's
# decoding (greedy, ended where an answer starts to loop), scored with eval/score.py.
#
#   make data                                   # data/medqa (5,000 training rows) and data/medqa-all (every row)
#   bash eval/medquad_result.sh run             # GPU machine: the runs and answers, side by side (again to go on)
#   bash eval/medquad_result.sh score           # round 4's lever tables, then eval/medquad-result/*.json
set -euo pipefail
PY=${PY:-python}
DATA=${DATA:-data/medqa}
OURS=${OURS:-epochs-5-cut}              # round 4: the recipe, make eval's decoding
PLAIN=${PLAIN:-plain-epochs-5-cut}      # round 4: plain Axolotl, the recipe's rows and schedule
BASE=${BASE:-base-cut}                  # round 3: the base model, decoded the same way
PLAIN1=${PLAIN1:-plain-1epoch-cut}      # round 3: plain Axolotl as its examples set it up (1 epoch, 5,000 rows)
ROUND3=recipes/smollm2-135m/levers/round-3.yml; WORK3=${WORK3:-outputs/levers/round-3}
ROUND4=recipes/smollm2-135m/levers/round-4.yml; WORK4=${WORK4:-outputs/levers/round-4}
OUT=${OUT:-eval/medquad-result}

case "${1:-}" in
run)
  for d in "$DATA" "$DATA-all"; do $PY scripts/export_seed_text.py "$d"; done
  $PY eval/levers.py run "$ROUND4" --work "$WORK4" --parallel "${PARALLEL:-16}"
  $PY eval/levers.py run "$ROUND3" --work "$WORK3" --parallel "${PARALLEL:-16}" \
    --only "generate-test-base-greedy,cut-test-$BASE,train-plain-1epoch,generate-test-plain-1epoch,cut-test-$PLAIN1" ;;
score)
  $PY eval/levers.py table "$ROUND4" --work "$WORK4"
  for pair in "ours-vs-base:$WORK4/$OURS:$WORK3/$BASE" "ours-vs-plain:$WORK4/$OURS:$WORK4/$PLAIN" \
              "ours-vs-plain-1epoch:$WORK4/$OURS:$WORK3/$PLAIN1" "plain-vs-base:$WORK4/$PLAIN:$WORK3/$BASE"; do
    IFS=: read -r name a b <<< "$pair"
    $PY eval/score.py "${a%/*}/preds/test/${a##*/}.jsonl" --baseline "${b%/*}/preds/test/${b##*/}.jsonl" --out "$OUT/$name"
    mv "$OUT/$name/metrics.json" "$OUT/$name.json"; rmdir "$OUT/$name"
  done
  for pair in "ours:$WORK4/$OURS" "base:$WORK3/$BASE" "plain:$WORK4/$PLAIN" "plain-1epoch:$WORK3/$PLAIN1"; do
    src=${pair#*:}; cp "${src%/*}/preds/test/${src##*/}.meta.json" "$OUT/${pair%%:*}.meta.json"
  done ;;
*) echo "usage: $0 run|score" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The committed result (eval/medquad-result/): SmolLM2-135M-Instruct on MedQuAD, from lever round 3
# (recipes/smollm2-135m/levers/round-3.yml): the recipe (every training row), the base model, and plain Axolotl
# with the recipe's rows and schedule (and in its own 1-epoch setup), all answering the first 1,000 test
# questions with make eval's decoding (greedy, ended where an answer starts to loop), scored with eval/score.py.
#
#   make data                                   # data/medqa (5,000 training rows) and data/medqa-all (every row)
#   bash eval/medquad_result.sh run             # GPU machine: every lever, side by side (again to go on)
#   bash eval/medquad_result.sh score           # the lever tables, then eval/medquad-result/*.json
set -euo pipefail
PY=${PY:-python}
SPEC=${SPEC:-recipes/smollm2-135m/levers/round-3.yml}
WORK=${WORK:-outputs/levers}
OURS=${OURS:-rows-all-cut}              # the recipe, make eval's decoding
BASE=${BASE:-base-cut}                  # the base model, decoded the same way
PLAIN=${PLAIN:-plain-rows-all-cut}      # plain Axolotl, the recipe's rows and schedule
PLAIN1=${PLAIN1:-plain-1epoch-cut}      # plain Axolotl as its examples set it up (1 epoch, 5,000 rows)
OUT=${OUT:-eval/medquad-result}
TEST=$WORK/preds/test

case "${1:-}" in
run)
  for d in "${DATA:-data/medqa}" "${DATA:-data/medqa}-all"; do $PY scripts/export_seed_text.py "$d"; done
  $PY eval/levers.py run "$SPEC" --data "${DATA:-data/medqa}" --work "$WORK" --parallel "${PARALLEL:-16}" ;;
score)
  $PY eval/levers.py table "$SPEC" --work "$WORK"
  for pair in "ours-vs-base:$OURS:$BASE" "ours-vs-plain:$OURS:$PLAIN" "ours-vs-plain-1epoch:$OURS:$PLAIN1" \
              "plain-vs-base:$PLAIN:$BASE"; do
    IFS=: read -r name a b <<< "$pair"
    $PY eval/score.py "$TEST/$a.jsonl" --baseline "$TEST/$b.jsonl" --out "$OUT/$name"
    mv "$OUT/$name/metrics.json" "$OUT/$name.json"; rmdir "$OUT/$name"
  done
  for pair in "ours:$OURS" "base:$BASE" "plain:$PLAIN" "plain-1epoch:$PLAIN1"; do
    cp "$TEST/${pair#*:}.meta.json" "$OUT/${pair%%:*}.meta.json"
  done ;;
*) echo "usage: $0 run|score" >&2; exit 2 ;;
esac

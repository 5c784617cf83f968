#!/usr/bin/env bash
# The README's result: SmolLM2-135M-Instruct on MedQuAD, the lever study (eval/levers/levers.yml) and the
# chosen levers scored on the test split against the base model and plain Axolotl.
#
#   make data                                   # data/medqa: 5,000 training rows, seed 42
#   bash eval/medquad_result.sh run             # GPU machine: every lever, side by side (again to go on)
#   bash eval/medquad_result.sh score           # eval/levers/levers{,-test}.{md,json}, eval/medquad-result/*.json
set -euo pipefail
PY=${PY:-python}
SPEC=${SPEC:-eval/levers/levers.yml}
WORK=${WORK:-outputs/levers}
OURS=${OURS:-seed-2048-x3-nrng-4}        # chosen on the validation split (make eval now: ...-nrng-4-answer, not yet run)
BASE=${BASE:-base-nrng-4}           # the base model, decoded the same way
PLAIN=${PLAIN:-plain-axolotl}
OUT=${OUT:-eval/medquad-result}
TEST=$WORK/preds/test

case "${1:-}" in
run)
  $PY scripts/export_seed_text.py "${DATA:-data/medqa}"
  $PY eval/levers.py run "$SPEC" --data "${DATA:-data/medqa}" --work "$WORK" --parallel "${PARALLEL:-16}" ;;
score)
  $PY eval/levers.py table "$SPEC" --work "$WORK" --out eval/levers/levers
  $PY eval/score.py "$TEST/$OURS.jsonl" --baseline "$TEST/$BASE.jsonl" --out "$OUT/ours-vs-base"
  $PY eval/score.py "$TEST/$OURS.jsonl" --baseline "$TEST/$PLAIN.jsonl" --out "$OUT/ours-vs-plain"
  $PY eval/score.py "$TEST/$PLAIN.jsonl" --baseline "$TEST/$BASE.jsonl" --out "$OUT/plain-vs-base"
  for f in ours-vs-base ours-vs-plain plain-vs-base; do mv "$OUT/$f/metrics.json" "$OUT/$f.json"; rmdir "$OUT/$f"; done
  for pair in "ours:$OURS" "base:$BASE" "plain:$PLAIN"; do cp "$TEST/${pair#*:}.meta.json" "$OUT/${pair%%:*}.meta.json"; done ;;
*) echo "usage: $0 run|score" >&2; exit 2 ;;
esac

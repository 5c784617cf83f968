#!/usr/bin/env bash
# The README's "Results" experiment, on one GPU: SmolLM2-135M-Instruct fine-tuned on 5,000 MedQuAD rows
# with the project's recipe and with plain Axolotl (baseline recipe), both scored on N held-out questions.
#
#   make data                                  # data/medqa: 5,000 training rows, seed 42
#   bash eval/medquad_result.sh train          # both fine-tunes, side by side on one GPU
#   bash eval/medquad_result.sh generate       # base, ours, plain Axolotl: N test answers each
#   bash eval/medquad_result.sh score          # metrics.json for ours vs base and ours vs plain Axolotl
set -euo pipefail
PY=${PY:-python}
DATA=${DATA:-data/medqa}
N=${N:-500}
OURS=${OURS:-outputs/smollm2-135m-medqa-qlora}
PLAIN=${PLAIN:-outputs/smollm2-135m-axolotl-completion}
EVAL=${EVAL:-outputs/medquad-result}
GEN=(--split test --n "$N" --max-new-tokens "${MAX_NEW_TOKENS:-256}" --batch-size "${BATCH:-64}" --precision full)

case "${1:-all}" in
train)
  $PY scripts/export_seed_text.py "$DATA"
  $PY scripts/finetune.py recipes/smollm2-135m-medqa-qlora.yml --data "$DATA" --output-dir "$OURS" > "$EVAL-ours.log" 2>&1 &
  $PY scripts/finetune.py recipes/baselines/smollm2-135m-axolotl-completion.yml --output-dir "$PLAIN" \
      --set "datasets=[{path: $DATA/train_text.jsonl, ds_type: json, type: completion}]" \
      --set "test_datasets=[{path: $DATA/val_text.jsonl, ds_type: json, split: train, type: completion}]" \
      > "$EVAL-plain.log" 2>&1 &
  wait ;;
generate)
  mkdir -p "$EVAL"
  $PY eval/generate.py "$OURS" --model base --data "$DATA" "${GEN[@]}" --out "$EVAL/base.jsonl" &
  $PY eval/generate.py "$OURS" --model tuned --data "$DATA" "${GEN[@]}" --out "$EVAL/ours.jsonl" &
  $PY eval/generate.py "$PLAIN" --model tuned --data "$DATA" "${GEN[@]}" --out "$EVAL/plain.jsonl" &
  wait ;;
score)
  $PY eval/score.py "$EVAL/ours.jsonl" --baseline "$EVAL/base.jsonl" --out "$EVAL/ours-vs-base"
  $PY eval/score.py "$EVAL/ours.jsonl" --baseline "$EVAL/plain.jsonl" --out "$EVAL/ours-vs-plain"
  $PY eval/score.py "$EVAL/plain.jsonl" --baseline "$EVAL/base.jsonl" --out "$EVAL/plain-vs-base" ;;
all) "$0" train && "$0" generate && "$0" score ;;
*) echo "usage: $0 [train|generate|score|all]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The committed result of round 5: SmolLM2-135M-Instruct on MedQuAD, from lever round 5
# (results/smollm2-135m/levers/round-5.yml): the recipe as it ships, then its preference stage (DPO on FactTune pairs:
# what ships), plain Axolotl trained on the same rows with the same schedule, and the base model. All answer the first
# 1,000 test questions with make eval's decoding (greedy, ended where an answer starts to loop), scored with
# eval/score.py.
#
#   make data                                   # data/medqa (5,000 training rows) and data/medqa-all (every row)
#   bash results/smollm2-135m/round-5/make.sh run             # GPU machine: the runs and answers, side by side (again to go on)
#   bash results/smollm2-135m/round-5/make.sh score           # round 5's lever tables, then results/smollm2-135m/round-5/*.json
set -euo pipefail
PY=${PY:-python}
SPEC=results/smollm2-135m/levers/round-5.yml
WORK=${WORK:-outputs/levers/round-5}
OUT=${OUT:-results/smollm2-135m/round-5}
# name in the result: lever of round 5
SYSTEMS="ours:dpo-facttune sft:ours plain:plain base:base-model"

case "${1:-}" in
run)
  $PY scripts/export_seed_text.py data/medqa-all
  $PY eval/levers.py run "$SPEC" --work "$WORK" --parallel "${PARALLEL:-12}" ;;
score)
  [ -n "${NO_TABLE:-}" ] || $PY eval/levers.py table "$SPEC" --work "$WORK"
  for pair in ours-vs-base ours-vs-plain ours-vs-sft sft-vs-base sft-vs-plain plain-vs-base; do
    a=${pair%%-vs-*}; b=${pair##*-vs-}
    la=$(tr ' ' '\n' <<< "$SYSTEMS" | grep "^$a:" | cut -d: -f2); lb=$(tr ' ' '\n' <<< "$SYSTEMS" | grep "^$b:" | cut -d: -f2)
    $PY eval/score.py "$WORK/preds/test/$la.jsonl" --baseline "$WORK/preds/test/$lb.jsonl" --out "$OUT/$pair"
    mv "$OUT/$pair/metrics.json" "$OUT/$pair.json"; rmdir "$OUT/$pair"
  done
  for system in $SYSTEMS; do
    cp "$WORK/preds/test/${system#*:}.meta.json" "$OUT/${system%%:*}.meta.json"
  done
  $PY -c "import json,sys; [print(json.dumps(e)) for e in json.load(open(sys.argv[1]))['log_history']]" \
    "$(ls -d $WORK/runs/ours/checkpoint-* | sort -t- -k2 -n | tail -1)/trainer_state.json" > "$OUT/sft-train-log.jsonl"
  $PY -c "import json,sys; [print(json.dumps(e)) for e in json.load(open(sys.argv[1]))['log_history']]" \
    "$(ls -d $WORK/runs/dpo-facttune/checkpoint-* | sort -t- -k2 -n | tail -1)/trainer_state.json" > "$OUT/dpo-train-log.jsonl" ;;
*) echo "usage: $0 run|score" >&2; exit 2 ;;
esac

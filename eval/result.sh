#!/usr/bin/env bash
# The committed result (eval/result/): SmolLM2-135M-Instruct on MedQuAD's test questions and on people's questions
# (MEDIQA 2019's test set), from lever round 6 (recipes/smollm2-135m/levers/round-6.yml): the recipe as it ships
# (chosen on people's validation questions), the recipe as it shipped before (MedQuAD alone, not cleaned), plain
# Axolotl trained on the same rows with the same schedule, and the base model. All answer with make eval's decoding
# (greedy, ended where an answer starts to loop) and are scored with eval/score.py.
#
#   make data                                   # data/medqa-all (cleaned), data/liveqa, data/mediqa
#   (see the spec's header for the other folders it trains on)
#   python eval/levers.py run recipes/smollm2-135m/levers/round-6.yml    # GPU machine: runs and answers
#   bash eval/result.sh                                                  # eval/result/{medquad,mediqa}/*.json
set -euo pipefail
PY=${PY:-python}
WORK=${WORK:-outputs/levers/round-6}
OUT=${OUT:-eval/result}
# name in the result: lever of round 6
SYSTEMS="ours:mix-w4 before:raw plain:plain-mix base:base-model"
lever() { tr ' ' '\n' <<< "$SYSTEMS" | grep "^$1:" | cut -d: -f2; }

for set in medquad:test mediqa:consumer-test; do
  name=${set%%:*}; preds=$WORK/preds/${set#*:}
  mkdir -p "$OUT/$name"
  for pair in ours-vs-base ours-vs-plain ours-vs-before plain-vs-base before-vs-base; do
    a=$(lever "${pair%%-vs-*}"); b=$(lever "${pair##*-vs-}")
    $PY eval/score.py "$preds/$a.jsonl" --baseline "$preds/$b.jsonl" --out "$OUT/$name/$pair" >/dev/null
    mv "$OUT/$name/$pair/metrics.json" "$OUT/$name/$pair.json"; rmdir "$OUT/$name/$pair"
  done
  for system in $SYSTEMS; do cp "$preds/${system#*:}.meta.json" "$OUT/$name/${system%%:*}.meta.json"; done
  echo "wrote $OUT/$name"
done

#!/usr/bin/env bash
# The committed result of round 7: SmolLM2-135M-Instruct on MedQuAD's test questions and on two test sets of
# people's questions (MEDIQA 2019's and LiveQA-Med's grouped test split), from lever round 7
# (results/smollm2-135m/levers/round-7.yml): the recipe as it ships (page titles cut; chosen on people's validation
# questions), the recipe before round 7 (page titles kept, the same rows otherwise), plain Axolotl trained on the
# same rows with the same weights and schedule, and the base model. All answer with make eval's decoding (greedy,
# ended where an answer starts to loop) and are scored with eval/score.py.
#
#   make data                                   # data/medqa-all, data/liveqa, data/mediqa (page titles cut)
#   (see the spec's header for the other folders it trains on)
#   python eval/levers.py run results/smollm2-135m/levers/round-7.yml    # GPU machine: runs and answers
#   bash results/smollm2-135m/round-7/make.sh   # results/smollm2-135m/round-7/{medquad,mediqa,liveqa}/*.json
set -euo pipefail
PY=${PY:-python}
WORK=${WORK:-outputs/levers/round-7}
OUT=${OUT:-results/smollm2-135m/round-7}
# name in the result: lever of round 7
SYSTEMS="ours:titles before:before plain:plain base:base-model"
lever() { tr ' ' '\n' <<< "$SYSTEMS" | grep "^$1:" | cut -d: -f2; }

for set in medquad:test mediqa:mediqa-test liveqa:liveqa-test; do
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

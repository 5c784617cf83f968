"""Score predictions against references; with --baseline, the paired difference with a bootstrap CI.

    python eval/score.py tuned.jsonl --baseline base.jsonl --out DIR

Writes DIR/metrics.json: {"n", "metrics": {metric: {"mean", "ci95"}}, "delta": {metric: {"mean", "ci95"}},
"references": {"loop_rate", "words"}, "by_type": {question type: means}} (delta = predictions minus baseline,
matched by id). Metrics: ROUGE-L/1/2, BLEU, chrF, token F1, embedding similarity, fact_precision (higher is better),
unsupported_facts, invented_numbers, loop_rate (lower is better), words and, where eval/generate.py recorded it,
hit_max_new_tokens (the share of answers cut off by the cap) and ended (the share the model ended itself).
"""

import argparse
import json
from pathlib import Path

from medqa.cli import command
from medqa.fsutil import atomic_write_text
from medqa.scoring import score


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args()
    result = score(args.predictions, args.baseline, args.seed)
    atomic_write_text(args.out / "metrics.json", json.dumps(result, indent=2) + "\n")
    for m, value in result["metrics"].items():
        if value["mean"] is None:  # e.g. fact_precision where no answer states a checkable fact
            print(f"{m:18s}        –")
            continue
        line = f"{m:18s} {value['mean']:8.4f}"
        d = result.get("delta", {}).get(m)
        if d and d["mean"] is not None:
            line += f"   delta {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
        print(line)
    print(f"wrote {args.out / 'metrics.json'}")


if __name__ == "__main__":
    main()

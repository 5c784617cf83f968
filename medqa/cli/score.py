"""Score predictions against references; with --baseline, the paired difference with a bootstrap CI.

    python eval/score.py tuned.jsonl --baseline base.jsonl --out DIR

Writes DIR/metrics.json: {"n", "metrics": {metric: {"mean", "ci95"}}, "delta": {metric: {"mean", "ci95"}},
"references": {"loop_rate", "words"}, "by_type": {question type: means}} (delta = predictions minus baseline,
matched by id). Metrics: ROUGE-L/1/2, BLEU, chrF, token F1, embedding similarity, fact_precision (higher is better),
unsupported_facts, invented_numbers, loop_rate (lower is better), words and, where eval/generate.py recorded it,
hit_max_new_tokens (the share of answers cut off by the cap) and ended (the share the model ended itself); for rows
with statements (K-QA's `must_have`, `nice_to_have`), must_have, the share of must-have statements the answer states
(medqa.statements: an offline rule by default; with --nli MODEL, a natural-language-inference cross-encoder judges
them, and contradicted, the share of statements the answer contradicts, is reported too).
"""

import argparse
import json
from pathlib import Path

from medqa.cli import command
from medqa.errors import UserError, first_line
from medqa.fsutil import atomic_write_text
from medqa.scoring import score


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--nli",
        default=None,
        metavar="MODEL",
        help="judge statements with this NLI cross-encoder (a Hub id or folder; labels entailment / contradiction)",
    )
    args = parser.parse_args()
    result = score(args.predictions, args.baseline, args.seed, judge=nli_judge(args.nli) if args.nli else None)
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


def nli_judge(name: str):
    """The NLI judge of --nli, or one line saying why it cannot be loaded."""
    from medqa.statements import NLIJudge

    try:
        return NLIJudge(name)
    except Exception as err:  # the hub, a folder without a model, labels it does not have: all mean "no judge"
        raise UserError(name, f"cannot load an NLI judge from it: {first_line(err)}") from None


if __name__ == "__main__":
    main()

"""Cut greedy answers where they start to loop: what `stop_on_loop` would have written (medqa.loops).

    python eval/cut_loops.py outputs/run/eval/val/tuned.jsonl --out outputs/run/eval/val/tuned-cut.jsonl

Greedy decoding is deterministic and the stopping rule only truncates, so an answer generated with stop_on_loop is
the greedy answer cut by the same rule (tests/test_loops.py checks that they are identical); cutting answers that
exist costs no GPU time. Rows cut get "stop": "loop"; their settings say stop_on_loop. Writes OUT and OUT.meta.json.
"""

import argparse
import json
from pathlib import Path

from medqa.cli import command
from medqa.errors import UserError
from medqa.fsutil import atomic_write_text
from medqa.loops import cut_loop
from medqa.predictions import load_predictions


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = load_predictions(args.predictions)
    if any(r.get("settings", {}).get("stop_on_loop") for r in rows):
        raise UserError(args.predictions, "already answered with stop_on_loop: nothing to cut")
    cut = 0
    for row in rows:
        row["prediction"], looped = cut_loop(row["prediction"])
        if looped:
            cut += 1
            row.update(stop="loop", hit_max_new_tokens=False)
        row["settings"] = {**row.get("settings", {}), "stop_on_loop": True, "cut_from": str(args.predictions)}
    meta_in = args.predictions.with_suffix(".meta.json")
    meta = json.loads(meta_in.read_text()) if meta_in.is_file() else {}
    meta.update(cut_from=str(args.predictions), cut=cut, settings={**meta.get("settings", {}), "stop_on_loop": True})
    atomic_write_text(args.out.with_suffix(".meta.json"), json.dumps(meta, indent=2) + "\n")  # the answers last
    atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{args.out}: {cut} of {len(rows)} answers cut where they start to loop")


if __name__ == "__main__":
    main()

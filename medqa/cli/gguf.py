"""The model where people run it: a GGUF for llama.cpp, Ollama and LM Studio, with the run's prompt inside (make gguf).

    python scripts/export_gguf.py outputs/smollm2-135m/qlora [--quant f16|bf16|q8_0|q4_k_m|...] [--out RUN/gguf]

From the model make merge writes (RUN/merged, merged first where it is not there): llama.cpp's own converter, its
quantiser for the k-quants (medqa/gguf.py). Writes OUT/<run>-<quant>.gguf, an Ollama Modelfile, a README and
gguf.json, whole or not at all.
"""

import argparse
import json
from pathlib import Path

from medqa.cli import command
from medqa.data import read_jsonl
from medqa.fsutil import atomic_write_text, check_writable, size_text
from medqa.gguf import TYPES, check_type, compare, export
from medqa.lock import lock_for
from medqa.publish import merge
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run folder of make finetune")
    parser.add_argument("--quant", default="f16", help=f"the GGUF's type: {', '.join(TYPES)} (default f16)")
    parser.add_argument("--out", type=Path, default=None, help="default: RUN/gguf")
    parser.add_argument(
        "--check",
        type=int,
        default=0,
        metavar="N",
        help="then answer N of the run's test questions with the merged model and the GGUF (transformers, and "
        "llama.cpp where llama-cpp-python is installed), greedy, and say how many agree (OUT/check.json)",
    )
    parser.add_argument("--check-tokens", type=int, default=64, help="--check: new tokens an answer (default 64)")
    args = parser.parse_args()
    quant = check_type(args.quant)  # before any model loads
    run = Run.open(args.run)
    run.adapter  # noqa: B018  (an unfinished run: one line)
    out = args.out or run.path / "gguf"
    merged = run.path / "merged"
    check_writable(out.parent, out.name)  # before any merging or converting
    with lock_for(run.path, out):  # one writer for each run folder
        if not (merged / "config.json").is_file():
            print(f"{merged}: not there yet, merging first (make merge)", flush=True)
            merge(run, merged)
        info = export(run.path, merged, out, quant)
    print(f"{out / info['file']}: {quant}, {size_text(info['bytes'])}; {out / 'Modelfile'} for Ollama")
    if args.check:
        questions = [r["question"] for r in read_jsonl(run.data_dir / "test.jsonl")[: args.check]]
        checked = compare(merged, out / info["file"], questions, args.check_tokens)
        atomic_write_text(out / "check.json", json.dumps(checked, indent=2, ensure_ascii=False) + "\n")
        summary = {k: v for k, v in checked.items() if k != "examples"}
        atomic_write_text(out / "gguf.json", json.dumps({**info, "check": summary}, indent=2) + "\n")
        for runtime in ("transformers", "llama.cpp"):
            if runtime in checked:
                c = checked[runtime]
                print(
                    f"{runtime}: {c['identical']} of {checked['questions']} greedy answers identical to the merged "
                    f"model's, {c['tokens_agreeing']} of {checked['tokens']} tokens agree before they part"
                )


if __name__ == "__main__":
    main()

"""Generate answers to held-out questions with a run's base model or its fine-tuned adapter.

    python eval/generate.py outputs/demo --model tuned --split test --n 100 --out outputs/demo/eval/test/tuned.jsonl

The tuned model answers in the run's exact training prompt (its tokenizer's chat template) and is the model as
trained: for a QLoRA run, the adapter merged into the dequantised NF4 weights it was trained against (`--weights
4bit` keeps the 4-bit layers and the adapter apart, as in training: slower, the same model); `--epoch E`: the
checkpoint saved at the end of epoch E. `--model base` is the base model as published, asked in its own chat
template (`--base-prompt run`: in the run's). Decoding: the options below, from medqa.decoding.GenerationSettings
(by default the decoding a merged model ships with: nothing cut after the fact), batches of similar-length prompts.
Writes JSONL rows {"id", "question", "reference", "prediction", "new_tokens", "hit_max_new_tokens", "stop", "model",
"settings"} and, beside them, FILE.meta.json with the reference answers' perplexity and the timing.
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

from medqa.cli import command
from medqa.data import read_jsonl
from medqa.decoding import add_arguments, from_arguments
from medqa.errors import UserError
from medqa.fsutil import atomic_write_text, check_writable
from medqa.generation import generate_answers
from medqa.inference import WEIGHTS, answer_perplexity, load_model
from medqa.predictions import prediction_lines
from medqa.recipe import setting
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("--model", choices=("base", "tuned"), default="tuned")
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=None,
        help="prepared data folder(s) (default: the run's); several: their questions one after the other, ids "
        "prefixed by the folder's name",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=None, help="first N questions of the split")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", choices=WEIGHTS, default="merged", help="tuned model: merged (default) or 4bit")
    parser.add_argument("--epoch", type=float, default=None, help="tuned model: the checkpoint saved at this epoch")
    parser.add_argument(
        "--base-prompt",
        choices=("own", "run"),
        default="own",
        help="base model: its own chat template (default) or the run's",
    )
    parser.add_argument("--no-perplexity", action="store_true")
    add_arguments(parser)
    args = parser.parse_args()

    run = Run.open(args.run)
    adapter = None  # the run's own files first: a damaged or unfinished run is said before its data is read
    if args.model == "tuned":
        adapter = run.adapter if args.epoch is None else run.epoch_adapter(args.epoch)
    folders = args.data or [run.data_dir]
    rows = []
    for data in folders:
        part = read_jsonl(data / f"{args.split}.jsonl")
        if not part:
            raise UserError(data / f"{args.split}.jsonl", "no rows to evaluate")
        rows += [{**r, "id": f"{data.name}/{r['id']}"} for r in part] if len(folders) > 1 else part
    rows = rows[: args.n]
    check_writable(args.out.parent, args.out.name)  # before the model answers, not after
    settings = from_arguments(args)
    if adapter is not None:
        model, tokenizer = run.load_model(args.weights, adapter)
    else:
        model, tokenizer = load_model(run.base_model, dtype=run.dtype)
        if args.base_prompt == "run" or not tokenizer.chat_template:
            tokenizer.chat_template = run.tokenizer().chat_template  # the prompt the run was trained with
    label = f"{run.base_model}" + (f"+{adapter}" if adapter else "")

    start = time.time()
    answers = generate_answers(model, tokenizer, [r["question"] for r in rows], settings)
    seconds = time.time() - start
    prompt = "run" if adapter is not None or args.base_prompt == "run" else "own"
    record = {**dataclasses.asdict(settings), "prompt": prompt, "dtype": str(model.dtype)}
    if adapter is not None:
        record["weights"] = args.weights
    lines = prediction_lines(rows, answers, label, record)
    meta = {
        "model": label,
        "which": args.model,
        "run": str(run.path),
        "data": [str(d) for d in folders],
        "split": args.split,
        "n": len(rows),
        "generation_seconds": round(seconds, 1),
        "settings": record,
    }
    refs = [{"question": r["question"], "reference": r["answer"]} for r in rows if r["answer"].strip()]
    if refs and not args.no_perplexity:  # questions without answers (K-QA's) have none to measure
        meta["reference_perplexity"] = answer_perplexity(
            model, tokenizer, refs, max_len=int(setting(run.recipe, "sequence_len"))
        )
    # the answers last: a file of answers means they are done (make eval and the lever runner skip them), so what
    # goes beside them is written first
    atomic_write_text(args.out.with_suffix(".meta.json"), json.dumps(meta, indent=2) + "\n")
    atomic_write_text(args.out, lines)
    ppl = f", reference perplexity {meta['reference_perplexity']:.2f}" if "reference_perplexity" in meta else ""
    print(f"{args.out}: {len(rows)} answers from the {args.model} model in {seconds:.0f} s{ppl}")


if __name__ == "__main__":
    main()

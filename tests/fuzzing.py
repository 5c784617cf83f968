"""What the generated bad-input suite (test_fuzz.py) needs: hypothesis's settings for `make test` and `make fuzz`, the
contract every case must keep, and a tally of what each reader met, which `make fuzz` writes to docs/robustness.md.

The contract: a command given any input ends in one of two ways, exit 0 with its whole output, or exit 2 with one line
on stderr, `error: <the file>: <the problem>` (the progress bars of work done before it aside); never a traceback,
another exit code or a partial output."""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, settings

# make test tries a few dozen cases a reader; make fuzz (MEDQA_FUZZ=1) a thousand or more
FUZZ = os.environ.get("MEDQA_FUZZ") == "1"
settings.register_profile(
    "suite",
    max_examples=40,
    deadline=None,
    derandomize=True,  # make test tries the same cases every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    database=None,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("MEDQA_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
PROFILE = "fuzz" if FUZZ else "suite"

TALLY: dict[str, Counter] = defaultdict(Counter)  # reader -> {outcome: cases}
KILLS: dict[str, dict] = {}  # command -> {"writes": n, "killed at": [k, ...], "passed": bool} (test_kill.py)
PROBLEMS: dict[str, Counter] = defaultdict(Counter)  # reader -> {the start of an error's problem: cases}
_ERROR = re.compile(r"^error: (?P<where>.+?): (?P<problem>.+)$")
# a progress bar of work done before the error (tqdm's "generate: 100%|####| 8/8 [00:01<00:00, 4.8it/s]", redrawn
# with carriage returns): output of the work, not a second message
_PROGRESS = re.compile(r"^[^\r]*\d+%\|[^|]*\|\s*\d+/\d+ \[[^\]]*\]\s*$")


def _messages(stderr: str) -> list[str]:
    """The lines of stderr that say something: progress bars left out."""
    out = []
    for line in stderr.splitlines():
        parts = [p for p in line.split("\r") if p.strip()]
        if parts and not all(_PROGRESS.match(p) for p in parts):
            out.append(line)
    return out


def leftovers(folder: Path) -> list[Path]:
    """Temporary files a write leaves behind (medqa.fsutil's `.NAME.tmp-*` and `.NAME.old-*`)."""
    return [p for p in Path(folder).rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def keeps_contract(reader: str, result, outputs: list[Path], names: list[str], whole=None, work: Path | None = None):
    """Check one case against the contract and count it under `reader`: `outputs` are the command's outputs (none
    may exist after an error), `names` the strings of which one must appear in the error line (the input's path or
    name), `whole(outputs)` says whether outputs written are whole, `work` the folder no temporary file may remain
    in."""
    outcome = f"exit {result.returncode}"
    try:
        if result.returncode == 0:
            missing = [str(p) for p in outputs if not Path(p).exists()]
            assert not missing, f"exit 0 without its output: {missing}"
            assert whole is None or whole(outputs), "exit 0 with an output that is not whole"
            outcome = "exit 0, output whole"
        else:
            assert result.returncode == 2, f"exit {result.returncode}:\n{result.stderr[-3000:]}"
            lines = _messages(result.stderr)
            assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{result.stderr[-3000:]}"
            match = _ERROR.match(lines[0])
            assert match, f"not `error: <file>: <problem>`: {lines[0]}"
            assert "Traceback" not in result.stderr
            assert any(n in lines[0] for n in names), f"the error does not name the file ({names}): {lines[0]}"
            written = [str(p) for p in outputs if Path(p).exists()]
            assert not written, f"an error left output behind: {written}"
            outcome = "exit 2, one line"
            PROBLEMS[reader][re.sub(r"\d+", "N", match["problem"])[:48]] += 1
        if work is not None:
            left = leftovers(work)
            assert not left, f"temporary files left: {left}"
    except AssertionError:
        TALLY[reader]["FAILED"] += 1
        raise
    TALLY[reader][outcome] += 1


def write_table(path: Path, tally: dict, kills: dict) -> None:
    """docs/robustness.md from a run's tallies (make fuzz): the generated cases and the kill points."""
    lines = [
        "# Generated bad input and a kill at every write: what each reader and command met",
        "",
        "Written by `make fuzz` (tests/test_fuzz.py and tests/test_kill.py with MEDQA_FUZZ=1), not by hand.",
        "",
        "## Generated input",
        "",
        "For each reader and the command that reads it, the cases hypothesis generated in this run and how each ended.",
        "The contract: exit 0 with the whole output, or exit 2 with one line naming the file and the problem (the",
        "progress bars of work done before it aside); never a traceback, another exit code, or a partial output.",
        "`make test` tries the same readers, 40 cases each (fewer for the run folders). The run folders are a small",
        "model's finished run, each case one of its files removed, emptied, cut short, garbled, made a folder or given",
        "a value of another type; dpo runs its merge and pairs and stops before Axolotl's training (tests/test_kill.py",
        "and the end-to-end tests run that).",
        "",
        "| reader (command) | cases | exit 0, output whole | exit 2, one line | failed |",
        "|---|---|---|---|---|",
    ]
    for reader in sorted(tally):
        t = tally[reader]
        total = sum(t.values())
        lines.append(f"| {reader} | {total} | {t.get('exit 0, output whole', 0)} | {t.get('exit 2, one line', 0)} | "
                     f"{t.get('FAILED', 0)} |")  # fmt: skip
    stride = os.environ.get("MEDQA_KILL_STRIDE") or 1
    lines += [
        "",
        "## A kill at every write",
        "",
        "Each command killed with SIGKILL (its process group, and a lever job's) just before its k-th write under its",
        "output folder (writes counted in all its Python processes: files opened for writing, renames, folders",
        "made or removed), then run again: what the kill left must be whole or absent, and the second run must end",
        "with the output of a run never stopped (byte for byte; timings aside; a training run by its steps, history",
        "and adapter, since Axolotl does not seed the LoRA initialisation). `make fuzz` tries every k; with",
        f"`KILL_STRIDE=n` every n-th, the first and the last always (this run: {stride}; make data every k).",
        "",
        "| command | writes | kill points tried | every one: whole or absent, then the same output | minutes |",
        "|---|---|---|---|---|",
    ]
    for command in sorted(kills):
        k = kills[command]
        minutes = f"{k['seconds'] / 60:.0f}" if "seconds" in k else "–"
        lines.append(f"| {command} | {k['writes']} | {len(k['killed at'])} | {'yes' if k['passed'] else 'NO'} | "
                     f"{minutes} |")  # fmt: skip
    Path(path).write_text("\n".join(lines) + "\n")


def save_part(path: Path) -> None:
    """One pytest-xdist worker's tallies, for the controller to merge (merge_parts)."""
    Path(path).write_text(json.dumps({"tally": {k: dict(v) for k, v in TALLY.items()}, "kills": KILLS}))


def merge_parts(parts: list[Path]) -> tuple[dict, dict]:
    tally: dict[str, Counter] = defaultdict(Counter, {k: Counter(v) for k, v in TALLY.items()})
    kills = dict(KILLS)
    for part in parts:
        data = json.loads(Path(part).read_text())
        for reader, counts in data["tally"].items():
            tally[reader].update(counts)
        kills.update(data["kills"])
    return tally, kills


def small_model(out: Path, embedded: Path) -> Path:
    """A 2-layer Llama with random weights and a 600-word byte-level BPE tokenizer trained on the demo set, the
    embedded model's special tokens and chat template: loads in milliseconds where the embedded model's 49,152-word
    tokenizer takes a second and a half, so that a thousand cases that reach the model run in minutes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from medqa_lab.bench.random_model import make_model

    if (out / "config.json").is_file():
        return out
    embedded_tok = AutoTokenizer.from_pretrained(embedded)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    demo = (embedded.parents[1] / "data" / "sample" / "medqa_demo.csv").read_text(encoding="utf-8")
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    bpe.train_from_iterator([demo], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")  # fmt: skip
    tok.chat_template = embedded_tok.chat_template
    tokenizer_dir = out.with_name(out.name + "-tokenizer")
    tok.save_pretrained(tokenizer_dir)
    make_model("tiny", out, tokenizer_dir)
    return out

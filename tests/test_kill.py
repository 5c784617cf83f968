"""A kill at every write: each command is stopped with SIGKILL (its whole process group, as kill -9 or a lost machine
would stop it) just before its k-th write under its output folder, for every k it has (tests/killpoint counts them
in all of its Python processes), then run again. What the kill left must be whole or absent (no file that the next
command could read half-written), and the second run must finish with the output of a run that was never stopped,
byte for byte where the work is deterministic. `make test` tries every kill point of make data; `make fuzz` every
point of each command (MEDQA_KILL_STRIDE=n: every n-th, the first and the last always, as CI runs it to fit its
time)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ENV, REPO
from fuzzing import KILLS

KILLPOINT = REPO / "tests" / "killpoint"
SHARED = REPO.parent / "shared" / "data" / "consumer"
STRIDE = int(os.environ.get("MEDQA_KILL_STRIDE") or 1)
pytestmark = [pytest.mark.slow, pytest.mark.kill]


def run(argv, cwd: Path, under: Path, at: int | None = None, match: str = "", timeout=900):
    """The command with its writes under `under` counted (and a SIGKILL before write `at`); (exit code, writes)."""
    count = Path(under).parent / f".kill-count-{at or 0}"
    count.unlink(missing_ok=True)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(KILLPOINT), ENV.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MEDQA_KILL_UNDER": str(under), "MEDQA_KILL_COUNT": str(count), "MEDQA_KILL_AT": str(at or 0),
           "MEDQA_KILL_MATCH": match, "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    proc = subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)  # fmt: skip
    writes = count.stat().st_size if count.exists() else 0
    count.unlink(missing_ok=True)
    if at is None:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.returncode, writes, proc


def snapshot(folder: Path, volatile=lambda rel, data: data) -> dict[str, str]:
    """Each file under `folder` (temporary ones included: none may be left) by its digest, after `volatile` has taken
    out what differs between two whole runs (timings)."""
    out = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        out[rel] = hashlib.sha256(volatile(rel, path.read_bytes())).hexdigest()
    return out


def points(total: int, stride: int = 1) -> list[int]:
    """The kill points tried: every `stride`-th write (all of them by default), the first and the last always."""
    ks = list(range(1, total + 1))
    return sorted(set(ks[::stride]) | {total})


def kill_everywhere(
    tmp_path, setup, argv, out: Path, volatile=lambda rel, data: data, stride=STRIDE, match="", name="", records=()
):
    """The test: `setup(folder)` lays out a fresh work folder (inputs); the command runs there once whole (the
    reference), then for each kill point in a fresh copy: killed, checked, run again, compared. `records`: JSON files
    written again as the work goes (the lever runner's jobs.json), whole where each is valid and a part of the whole
    run's. Counted under `name` for docs/robustness.md."""
    started = time.time()
    ref_dir = tmp_path / "whole"
    setup(ref_dir)
    _, total, _ = run(argv(ref_dir), ref_dir, ref_dir / out)
    assert total > 0, "the command wrote nothing under its output folder: nothing to kill"
    reference = snapshot(ref_dir / out, volatile)
    tried = []
    KILLS[name] = {"writes": total, "killed at": tried, "passed": False}
    for k in points(total, stride):
        work = tmp_path / f"kill-{k}"
        setup(work)
        code, _, proc = run(argv(work), work, work / out, at=k, match=match)
        assert code == -signal.SIGKILL, f"write {k} of {total}: not killed (exit {code}): {proc.stderr[-2000:]}"
        left = snapshot(work / out, volatile) if (work / out).exists() else {}
        half = {f: d for f, d in left.items() if f in reference and d != reference[f] and not _temporary(f)}
        for f in [f for f in half if f in records]:  # a record written as the work goes: whole, and part of the end's
            if _part_of(volatile(f, (work / out / f).read_bytes()), volatile(f, (ref_dir / out / f).read_bytes())):
                del half[f]
        assert not half, f"a kill before write {k} of {total} left files that are not whole: {sorted(half)}"
        again, _, proc = run(argv(work), work, work / out)
        assert again == 0
        final = snapshot(work / out, volatile)
        for f in records:  # a job that finished as the runner was killed has no record: the rest must be the same
            if f in final and _part_of(
                volatile(f, (work / out / f).read_bytes()), volatile(f, (ref_dir / out / f).read_bytes())
            ):
                final[f] = reference[f]
        assert final == reference, f"after a kill before write {k}: another output"
        tried.append(k)
        shutil.rmtree(work, ignore_errors=True)
    KILLS[name].update(passed=True, seconds=time.time() - started)
    return total, tried


def _part_of(left: bytes, whole: bytes) -> bool:
    """Whether a JSON mapping is whole and each of its entries is the whole run's."""
    try:
        part, full = json.loads(left), json.loads(whole)
    except ValueError:
        return False
    return isinstance(part, dict) and all(k in full and full[k] == v for k, v in part.items())


def _temporary(rel: str) -> bool:
    """A write's temporary copy (medqa.fsutil's `.NAME.tmp-*`): never read as the output, and gone after a rerun."""
    return any(part.startswith(".") and (".tmp-" in part or ".old-" in part) for part in Path(rel).parts)


# --------------------------------------------------------------------------- make data


def test_make_data(tmp_path, medquad):
    def setup(folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        with open(medquad, newline="") as f, open(folder / "medquad.csv", "w", newline="") as g:
            writer = csv.writer(g)
            for i, row in enumerate(csv.reader(f)):
                if i > 400:
                    break
                writer.writerow(row)

    def argv(folder: Path):
        people = [(f"--{name}", SHARED / file) for name, file in
                  (("mediqa", "mediqa_qa.csv"), ("kqa", "kqa_questions.jsonl"), ("kqa-golden", "kqa_golden_dev.jsonl"))
                  if (SHARED / file).is_file()]  # fmt: skip
        return [REPO / "scripts" / "data.py", "--input", "medquad.csv", *[a for p in people for a in p]]

    total, tried = kill_everywhere(tmp_path, setup, argv, Path("data"), stride=1, name="make data")
    assert len(tried) == total  # every write of make data


# --------------------------------------------------------------------------- make merge, make gguf, make eval


def copy_run(source: Path, to: str = "run"):
    def setup(folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, folder / to)

    return setup


@pytest.mark.fuzz
def test_make_merge(tmp_path, tiny_run):
    argv = lambda folder: [REPO / "scripts" / "merge.py", "run", "--out", "merged"]  # noqa: E731
    total, tried = kill_everywhere(tmp_path, copy_run(tiny_run), argv, Path("merged"), name="make merge")
    assert tried[-1] == total


@pytest.mark.fuzz
def test_make_gguf(tmp_path, tiny_run):
    """make gguf from a run merged first (the merge's writes and the converter's, a process of its own)."""
    # outputs/run: the GGUF is named after the run's folder (run-f16.gguf), the same in every work folder
    # the run's own folder: its merged model and its GGUF (RUN/merged, RUN/gguf, the defaults)
    argv = lambda folder: [REPO / "scripts" / "export_gguf.py", "outputs/run"]  # noqa: E731
    total, tried = kill_everywhere(tmp_path, copy_run(tiny_run, "outputs/run"), argv, Path("outputs/run"),
                                   name="make gguf (merged first)")  # fmt: skip
    assert tried[-1] == total


def drop_timings(rel: str, data: bytes) -> bytes:
    """What differs between two whole runs of the same work: how long it took (generation_seconds in FILE.meta.json,
    seconds in jobs.json, progress and timings in a log), and in jobs.json the card a job ran on."""
    if rel.endswith("meta.json"):
        meta = json.loads(data)
        meta.pop("generation_seconds", None)
        return json.dumps(meta, sort_keys=True).encode()
    if rel.endswith("jobs.json"):
        jobs = json.loads(data)
        return json.dumps({k: {**v, "seconds": None, "gpu": None} for k, v in jobs.items()}, sort_keys=True).encode()
    if rel.endswith(".log"):
        return b""  # a job's log: its output as it ran, appended to by each call
    return data


@pytest.mark.fuzz
def test_make_eval(tmp_path, tiny_run):
    """make eval on the run's test split (answers of both models, scores, report), no people's sets."""
    from conftest import prepare_demo_data

    def setup(folder: Path):
        copy_run(tiny_run, "outputs/run")(folder)
        prepare_demo_data(folder / "data" / "medqa-all")  # the run's data, where its recipe names it

    argv = lambda folder: [REPO / "eval" / "evaluate.py", "outputs/run", "--n", "2", "--consumer"]  # noqa: E731
    total, tried = kill_everywhere(tmp_path, setup, argv, Path("outputs/run/eval"), drop_timings,
                                   name="make eval (answers, scores, report)")  # fmt: skip
    assert tried[-1] == total


@pytest.mark.fuzz
def test_the_lever_runner(tmp_path, tiny_run):
    """The lever runner, its jobs processes of their own: the reference run trained already (an earlier call), its
    answers, the base model's and a decoding lever's to answer; killed at each write of the runner or of a job."""
    import yaml
    from conftest import prepare_demo_data

    recipe = str(REPO / "recipes" / "smollm2-135m" / "qlora.yml")  # the work folder is not the repository
    spec = {"recipe": recipe, "split": "val", "n": 2, "decode": {"max_new_tokens": 4},
            "levers": [{"name": "reference", "about": "the recipe"},
                       {"name": "base-model", "about": "the base", "model": "base"},
                       {"name": "rp", "about": "repetition_penalty 1.1", "model": "reference",
                        "decode": {"repetition_penalty": 1.1}}]}  # fmt: skip

    def setup(folder: Path):
        copy_run(tiny_run, "work/runs/reference")(folder)
        prepare_demo_data(folder / "data")
        (folder / "spec.yml").write_text(yaml.safe_dump(spec))

    argv = lambda folder: [REPO / "eval" / "levers.py", "run", "spec.yml", "--data", "data", "--work", "work",  # noqa: E731
                           "--parallel", "2"]  # fmt: skip
    total, tried = kill_everywhere(tmp_path, setup, argv, Path("work"), drop_timings, records=("jobs.json",),
                                   name="the lever runner (make levers) and its jobs")  # fmt: skip
    assert tried[-1] == total


# --------------------------------------------------------------------------- a training checkpoint


@pytest.mark.fuzz
def test_a_training_checkpoint(tmp_path, tiny_model):
    """make finetune killed at each write of its checkpoints (Axolotl's trainer writes a checkpoint's files in
    place, one after the other), then run again: it resumes from the newest checkpoint that is whole (a half-written
    one is passed over, never read), keeps the losses logged before it, and ends at the run's last step with the
    adapter a run that was never stopped has. Not byte for byte: Axolotl does not seed the LoRA initialisation, so
    two whole runs of one recipe differ; the steps, the history and the adapter's tensors are compared."""
    from conftest import prepare_demo_data
    from safetensors.torch import load_file

    from medqa.runs import checkpoint_problem, newest_sound_checkpoint

    def setup(folder: Path):
        prepare_demo_data(folder / "data")

    def argv(folder: Path):  # run from the repository's root, as make runs it (the recipe names its template so)
        sets = [f"base_model={tiny_model}", "max_steps=4", "save_steps=2", "eval_strategy=no", "logging_steps=1",
                "sequence_len=128"]  # fmt: skip
        return ["scripts/finetune.py", "recipes/smollm2-135m/qlora.yml", "--data", folder / "data",
                "--output-dir", folder / "run", *[a for kv in sets for a in ("--set", kv)]]  # fmt: skip

    def losses(state_file: Path) -> dict:
        state = json.loads(state_file.read_text())
        return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}

    started = time.time()
    whole = tmp_path / "whole"
    setup(whole)
    _, total, _ = run(argv(whole), REPO, whole / "run", match="checkpoint-")
    assert total > 3, "the checkpoints' writes were not seen"
    reference = load_file(whole / "run" / "adapter_model.safetensors")
    resumed_from = []
    tried = []
    KILLS["make finetune (its checkpoints)"] = {"writes": total, "killed at": tried, "passed": False}
    for k in points(total, STRIDE):
        work = tmp_path / f"kill-{k}"
        setup(work)
        code, _, proc = run(argv(work), REPO, work / "run", at=k, match="checkpoint-")
        assert code == -signal.SIGKILL, proc.stderr[-2000:]
        assert not (work / "run" / "adapter_model.safetensors").exists()
        sound = newest_sound_checkpoint(work / "run")
        assert sound is None or checkpoint_problem(sound) is None  # what a resume reads is whole
        before = losses(sound / "trainer_state.json") if sound else {}
        again, _, proc = run(argv(work), REPO, work / "run")
        assert again == 0
        assert ("resuming from" in proc.stdout) == (sound is not None), proc.stdout[-2000:]
        final = work / "run" / "checkpoint-4" / "trainer_state.json"
        assert json.loads(final.read_text())["global_step"] == 4
        after = losses(final)
        assert set(after) == {1, 2, 3, 4} and all(after[s] == v for s, v in before.items())  # history kept
        adapter = load_file(work / "run" / "adapter_model.safetensors")
        assert {n: t.shape for n, t in adapter.items()} == {n: t.shape for n, t in reference.items()}
        resumed_from.append(sound.name if sound else None)
        tried.append(k)
        shutil.rmtree(work, ignore_errors=True)
    KILLS["make finetune (its checkpoints)"].update(passed=True, seconds=time.time() - started)
    assert any(resumed_from) or total <= 2, resumed_from  # some kills came after the checkpoint was whole

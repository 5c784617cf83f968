"""A damaged run folder: each file a command reads, missing, empty, cut short or not what it should be, and each
command that reads a run folder run on it as a user runs it. Each gets one line naming the file, exit code 2, no
traceback, and the folder is left exactly as it was. Resuming skips a damaged newest checkpoint."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, prepare_demo_data, run_main

from medqa.errors import UserError

FILES = ("recipe.yml", "adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
         "chat_template.jinja")  # fmt: skip
DAMAGE = ("missing", "empty", "cut", "garbage")
COMMANDS = {  # what make runs for each target, on RUN
    "ask": ["scripts/ask.py", "{run}", "-q", "What is asthma?", "--max-new-tokens", "2"],
    "eval": ["eval/generate.py", "{run}", "--model", "tuned", "--n", "1", "--out", "{tmp}/eval/tuned.jsonl"],
    "merge": ["scripts/merge.py", "{run}", "--out", "{tmp}/merged"],
    "dpo": ["scripts/pairs.py", "{run}", "--out", "{tmp}/pairs", "--n", "2"],
    "push": ["scripts/push.py", "{run}", "--repo", "user/model"],
    "benchmark": ["eval/benchmark.py", "{run}", "--limit", "1", "--tasks", "pubmedqa", "--out", "{tmp}/bench"],
    "plan": ["scripts/plan.py", "{run}/recipe.yml"],
}


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "cut":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"\x00\x93PK garbage \xff" * 8)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def run_in_process(argv: list[str]) -> tuple[int, str]:
    """A command as `make` runs it (its script as __main__), in this process: its exit code and stderr."""
    done = run_main(*argv)
    return done.returncode, done.stderr


@pytest.mark.parametrize("name", FILES)
def test_each_command_on_each_damaged_file(name, tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_copy = tmp_path / "run"
    for how in DAMAGE:
        shutil.rmtree(run_copy, ignore_errors=True)
        shutil.copytree(tiny_run, run_copy)
        damage(run_copy / name, how)
        before = snapshot(run_copy)
        for command, argv in COMMANDS.items():
            if command == "plan" and name != "recipe.yml":  # a recipe is all make plan reads of a run folder
                continue
            argv = [a.format(run=run_copy, tmp=tmp_path) for a in argv]
            code, err = run_in_process(argv)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2, (command, name, how, err[-1500:])
            assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, (command, name, how, err)
            shown = lines[-1]
            assert name in shown or (name == "recipe.yml" and str(run_copy) in shown), (command, name, how, shown)
            assert snapshot(run_copy) == before, (command, name, how)
        for made in ("eval", "merged", "pairs", "bench"):
            assert not (tmp_path / made).exists(), (name, how, made)


def checkpoint(out: Path, step: int, tiny_run: Path) -> Path:
    """A checkpoint as the trainer leaves it: its state, the adapter, optimizer and scheduler states."""
    import torch

    folder = out / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(tiny_run / name, folder / name)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / 10}))
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    return folder


@pytest.mark.parametrize("file", ["optimizer.pt", "adapter_model.safetensors", "trainer_state.json", "scheduler.pt"])
def test_resume_skips_a_damaged_newest_checkpoint(file, tmp_path, tiny_run, capsys):
    from medqa.runs import newest_sound_checkpoint

    out = tmp_path / "out"
    checkpoint(out, 10, tiny_run)
    newest = checkpoint(out, 20, tiny_run)
    assert newest_sound_checkpoint(out) == newest
    damage(newest / file, "cut")
    assert newest_sound_checkpoint(out) == out / "checkpoint-10"
    assert f"checkpoint-20 is damaged ({file}" in capsys.readouterr().out
    damage(out / "checkpoint-10" / file, "missing")
    with pytest.raises(UserError, match="none complete"):
        newest_sound_checkpoint(out)


def test_finetune_resuming_refuses_when_no_checkpoint_is_complete(tmp_path, tiny_model, tiny_run):
    """make finetune on a folder whose checkpoints are all damaged: one line, nothing launched, nothing changed."""
    from medqa.launch import resolve
    from medqa.recipe import run_recipe_text

    data = prepare_demo_data(tmp_path / "data")
    out = tmp_path / "out"
    recipe = REPO / "recipes" / "smollm2-135m" / "qlora.yml"
    args = ["--data", str(data), "--output-dir", str(out), "--set", f"base_model={tiny_model}"]
    cfg = resolve(recipe, data=data, output_dir=out, overrides=[f"base_model={tiny_model}"], gpus=0).recipe
    out.mkdir()
    (out / "recipe.yml").write_text(run_recipe_text(cfg, recipe))  # as the interrupted run wrote it
    damage(checkpoint(out, 10, tiny_run) / "optimizer.pt", "cut")
    before = snapshot(out)
    code, err = run_in_process(["scripts/finetune.py", str(recipe), *args])
    assert code == 2 and "none complete" in err and "Traceback" not in err, err[-2000:]
    assert snapshot(out) == before


@pytest.mark.parametrize("name", ["metrics.json", "base.jsonl", "tuned.jsonl", "tuned.meta.json"])
def test_report_on_damaged_eval_outputs(name, tmp_path):
    """eval/report.py reads what make eval wrote: each of those files damaged is one line."""
    folder = tmp_path / "run" / "eval" / "test"
    folder.mkdir(parents=True)
    row = {"id": "1", "question": "q?", "reference": "r", "prediction": "p"}
    for which in ("base", "tuned"):
        (folder / f"{which}.jsonl").write_text(json.dumps(row) + "\n")
        (folder / f"{which}.meta.json").write_text(json.dumps({"split": "test"}))
    (folder / "metrics.json").write_text(json.dumps({"n": 1, "metrics": {}, "delta": {}, "baseline": {}}))
    for how in DAMAGE[1:]:
        damage(folder / name, how)
        code, err = run_in_process(["eval/report.py", str(folder), "--run", str(tmp_path / "run")])
        assert code == 2 and name in err and "Traceback" not in err, (name, how, err[-1500:])
        assert not (folder / "report").exists()


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "generation_config.json"])
def test_push_of_a_damaged_merged_model(name, tmp_path, tiny_run, tiny_model, monkeypatch):
    """make push MERGED=1 reads the merged folder: a damaged file there is one line, before any upload."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    merged = tmp_path / "merged"
    shutil.copytree(tiny_model, merged)
    (merged / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    damage(merged / name, "cut" if name != "config.json" else "garbage")
    code, err = run_in_process(["scripts/push.py", str(tiny_run), "--repo", "user/model", "--merged", str(merged)])
    assert code == 2 and name in err and "Traceback" not in err, err[-1500:]

"""A run killed with SIGKILL resumes from its newest complete checkpoint and ends at the same step;
a hub token in the environment is never printed or written into the run folder."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ENV, REPO, prepare_demo_data, run_script


def finetune_args(data, run, model):
    return [
        "scripts/finetune.py",
        "recipes/smollm2-135m/qlora.yml",
        "--data",
        str(data),
        "--output-dir",
        str(run),
        "--set",
        f"base_model={model}",
        "--set",
        "max_steps=6",
        "--set",
        "save_steps=2",
        "--set",
        "logging_steps=1",
        "--set",
        "sequence_len=128",
    ]


def losses(state):
    return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}


@pytest.mark.slow
def test_killed_run_resumes_and_finished_run_is_not_overwritten(tmp_path, tiny_model):
    data, run = tmp_path / "data", tmp_path / "run"
    prepare_demo_data(data)
    args = finetune_args(data, run, tiny_model)

    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while not (run / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "adapter_model.safetensors").is_file()
    done = sorted(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*") if (p / "trainer_state.json").is_file())
    before = json.loads((run / f"checkpoint-{done[-1]}" / "trainer_state.json").read_text())
    half = run / "checkpoint-5"  # a save the kill interrupted: weights written, state not
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes(b"partial")

    secret = "hf_medqaTestSecretNeverToBeWritten"
    result = run_script(*args, env={**ENV, "HF_TOKEN": secret})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert secret not in result.stdout + result.stderr
    for path in run.rglob("*"):  # logs, recipe.yml, trainer state, TensorBoard events
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert f"resuming from {run / f'checkpoint-{done[-1]}'}" in result.stdout
    final = json.loads((run / "checkpoint-6" / "trainer_state.json").read_text())
    assert final["global_step"] == 6 and (run / "adapter_model.safetensors").is_file()
    after = losses(final)
    assert sorted(after) == [1, 2, 3, 4, 5, 6]
    assert all(after[s] == loss for s, loss in losses(before).items())  # the history before the kill is kept

    again = run_script(*args)
    assert again.returncode == 2 and "holds a finished run" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

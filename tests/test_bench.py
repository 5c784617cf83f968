"""make bench's code on CPU with a tiny model: it runs, and its figures come from what was trained."""

import json
import math

import pytest
import torch
from conftest import ENV, REPO, prepare_demo_data

from medqa.bench import real_tokens


def test_padding_is_a_pad_id_without_a_label():
    ids = torch.tensor([[5, 6, 2, 7, 2, 2], [5, 2, 2, 2, 2, 2]])  # pad id 2; the first row's first 2 is a trained EOS
    labels = torch.tensor([[-100, 6, 2, 7, -100, -100], [-100, -100, -100, -100, -100, -100]])
    packed_mask = torch.ones_like(ids)  # a packed batch marks every position
    assert real_tokens({"input_ids": ids, "labels": labels, "attention_mask": packed_mask}, 2) == 5
    assert real_tokens({"input_ids": ids, "attention_mask": packed_mask[:, :3]}, None) == 6


@pytest.mark.slow
def test_bench_runs_and_counts_what_was_trained(tmp_path):
    data = tmp_path / "data"
    prepare_demo_data(data, "--limit", "48")
    env_warmup = {**ENV, "MEDQA_BENCH_WARMUP": "1"}
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "scripts/bench.py",
            "--make-model",
            "tiny",
            "--model",
            tmp_path / "model",
            "--data",
            data,
            "--out",
            tmp_path / "bench",
            "--steps",
            "6",
            "--runs",
            "seed,recipe",
        ],
        cwd=REPO,
        env=env_warmup,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [report_path] = (tmp_path / "bench").glob("*-cpu.json")
    assert report_path.with_suffix(".md").is_file()
    runs = {r["name"]: r for r in json.loads(report_path.read_text())["runs"]}
    for r in runs.values():
        d = r["detail"]
        assert d["global_step"] == 6 and d["steps_timed"] == 5
        assert r["tokens_per_s"] == pytest.approx(d["tokens_timed"] / d["seconds_timed"])
        assert r["step_s"] == pytest.approx(d["seconds_timed"] / 5)
        assert math.isclose(r["epoch_s"], d["epoch_tokens"] / r["tokens_per_s"])
    # 48 rows, 8 a step: 6 steps are exactly one epoch, so every non-padding token was counted once
    seed = runs["seed"]["detail"]
    assert seed["tokens_all_steps"] == seed["epoch_tokens"]
    assert runs["recipe"]["speedup_vs_seed"] == pytest.approx(
        runs["recipe"]["tokens_per_s"] / runs["seed"]["tokens_per_s"]
    )

"""make bench's code on CPU with a tiny model: it runs, and its figures come from what was trained."""

import json
import math

import pytest
import torch
from conftest import prepare_demo_data, run_main

from medqa.errors import UserError
from medqa.paths import FLAGSHIP
from medqa_lab.bench.contenders import axolotl_cfg
from medqa_lab.bench.meter import real_tokens


def test_padding_is_a_pad_id_without_a_label():
    ids = torch.tensor([[5, 6, 2, 7, 2, 2], [5, 2, 2, 2, 2, 2]])  # pad id 2; the first row's first 2 is a trained EOS
    labels = torch.tensor([[-100, 6, 2, 7, -100, -100], [-100, -100, -100, -100, -100, -100]])
    packed_mask = torch.ones_like(ids)  # a packed batch marks every position
    assert real_tokens({"input_ids": ids, "labels": labels, "attention_mask": packed_mask}, 2) == 5
    assert real_tokens({"input_ids": ids, "attention_mask": packed_mask[:, :3]}, None) == 6


@pytest.mark.slow
def test_bench_runs_and_counts_what_was_trained(tmp_path, monkeypatch):
    data = tmp_path / "data"
    prepare_demo_data(data, "--limit", "48")
    monkeypatch.setenv("MEDQA_BENCH_WARMUP", "1")
    result = run_main(
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
        "seed,recipe+sequence_len=256",  # 48 short rows: at 4,096 they would not fill one packed batch
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [report_path] = (tmp_path / "bench").glob("*-cpu.json")
    assert report_path.with_suffix(".md").is_file()
    runs = {r["name"]: r for r in json.loads(report_path.read_text())["training"]["runs"]}
    for r in runs.values():
        d = r["detail"]
        assert d["global_step"] == 6 and d["steps_timed"] == 5
        assert r["tokens_per_s"] == pytest.approx(d["tokens_timed"] / d["seconds_timed"])
        assert r["step_s"] == pytest.approx(d["seconds_timed"] / 5)
        assert math.isclose(r["epoch_s"], d["epoch_tokens"] / r["tokens_per_s"])
    # 48 rows, 8 a step: 6 steps are exactly one epoch, so every non-padding token was counted once
    seed = runs["seed"]["detail"]
    assert seed["tokens_all_steps"] == seed["epoch_tokens"]
    recipe = runs["recipe+sequence_len=256"]
    assert recipe["speedup_vs_seed"] == pytest.approx(recipe["tokens_per_s"] / runs["seed"]["tokens_per_s"])
    assert recipe["detail"]["world_size"] == 1 and recipe["detail"]["tokens_all_steps"] > 0


def test_contender_configs(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the GPU configs, built on any machine
    cfg = lambda name: axolotl_cfg(name, FLAGSHIP, tmp_path / "m", tmp_path / "d", tmp_path / "o", 20)  # noqa: E731
    recipe = cfg("recipe")
    resume = "medqa.resume.PagedResumePlugin"
    assert recipe["plugins"] == ["axolotl.integrations.liger.LigerPlugin", resume, "medqa_lab.bench.meter.BenchPlugin"]
    assert recipe["max_steps"] == 20 and recipe["save_strategy"] == "no" and "save_steps" not in recipe
    # the peer is Axolotl's example: none of the recipe's levers leak into it
    example = cfg("axolotl-example")
    assert example["plugins"] == ["medqa_lab.bench.meter.BenchPlugin"] and not any(
        k.startswith("liger_") for k in example
    )
    assert example["lora_r"] == 32 and example["lora_target_linear"] and "lora_target_modules" not in example
    # levers: KEY=VALUE (parsed as YAML) and named presets
    lever = cfg("recipe+sequence_len=8192+embeddings_skip_upcast=true")
    assert lever["sequence_len"] == 8192 and lever["embeddings_skip_upcast"] is True
    assert {k: v for k, v in lever.items() if k != "embeddings_skip_upcast"} == {**recipe, "sequence_len": 8192}
    with pytest.raises(UserError, match="lever 'ligr'"):
        cfg("recipe+ligr")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = cfg("recipe")
    assert cpu["plugins"] == [resume, "medqa_lab.bench.meter.BenchPlugin"] and not any(
        k.startswith("liger_") for k in cpu
    )
    assert cpu["optimizer"] == "adamw_torch" and cpu["bf16"] is False


def test_generation_bench_times_each_path_and_marks_make_evals(tmp_path, tiny_model):
    """scripts/bench_generation.py on the tiny model: one row per path in bench/<date>-<gpu>.json, the slow
    4-bit path answering fewer questions, and on a CPU no path is make eval's (that is a GPU's path)."""
    from medqa.decoding import GenerationSettings
    from medqa_lab.bench.generation import PATHS

    data = prepare_demo_data(tmp_path / "data")
    names = ["4bit-b16-dynamic", "inductor", "inductor-plain"]
    result = run_main(
        "scripts/bench_generation.py",
        "--model",
        tiny_model,
        "--data",
        data,
        "--out",
        tmp_path / "bench",
        "--n",
        "40",
        "--max-new-tokens",
        "4",
        "--paths",
        ",".join(names),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [report] = (tmp_path / "bench").glob("*-cpu.json")
    rows = json.loads(report.read_text())["generation"]["runs"]
    assert [r["name"] for r in rows] == names and [r["n"] for r in rows] == [32, 40, 40]
    for r in rows:
        assert r["max_new_tokens"] == 4 and r["seconds"] > 0 and r["new_tokens"] > 0
        # nothing compiles on a CPU (a growing cache): one run, no warm rerun
        assert r["peak_gib"] is None and r["again_s"] is None and "warm_s" not in r
    assert [r["batch_size"] for r in rows] == [16, 40, 40]  # auto: every answer in one batch on a CPU
    assert [r["decoding"] for r in rows] == ["default", "default", "plain"]
    assert rows[2]["settings"]["stop_on_loop"] is False and rows[1]["settings"] == GenerationSettings(4).__dict__
    assert [r["default"] for r in rows] == [False, True, False]  # the path make eval takes (on a GPU: static)
    assert sum(p.default for p in PATHS) == 1  # exactly one path is make eval's on a GPU
    assert rows[2]["same_answers_as"] == {"path": "inductor", "same": 40, "of": 40}  # no loop within 4 tokens
    assert "| inductor | cpu | 40 | 40 |" in report.with_suffix(".md").read_text()


def test_one_writer_keeps_the_other_sections(tmp_path):
    """bench/<date>-<gpu>.{json,md}: writing one section (training, generation) keeps the others, also in a report
    written before sections (training figures at the top level, its table first)."""
    from medqa_lab.bench.report import report_stem, sections, write_section

    stem = tmp_path / report_stem("NVIDIA H200")
    stem.with_suffix(".json").write_text(json.dumps({"runs": [{"name": "recipe"}]}))
    stem.with_suffix(".md").write_text("| old training table |\n")
    write_section(tmp_path, "NVIDIA H200", "generation", {"runs": [1]}, "| generation |")
    report = json.loads(stem.with_suffix(".json").read_text())
    assert sections(report)["training"]["runs"] == [{"name": "recipe"}] and report["generation"] == {"runs": [1]}
    write_section(tmp_path, "NVIDIA H200", "training", {"runs": [2]}, "| new training |")
    md = stem.with_suffix(".md").read_text()
    assert md == "## Training\n\n| new training |\n\n## Generation\n\n| generation |\n"
    assert json.loads(stem.with_suffix(".json").read_text())["generation"] == {"runs": [1]}

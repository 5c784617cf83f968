"""Faults of the machine, not of the input: a full disk and a read-only folder under every command that writes, and
two commands on one run folder. Each case checks the one line, the exit code, and that the folders are as they were.
The full and read-only filesystems are real: small tmpfs mounts made here (the tests skip where mounting is not
allowed)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ENV, REPO, prepare_demo_data, run_main
from test_damage import snapshot

from medqa.fsutil import PAUSE

SAMPLE = REPO / "data" / "sample" / "medqa_demo.csv"


@pytest.fixture
def disk(tmp_path):
    """A 1 MB tmpfs of this test's own at tmp_path/disk, with helpers to fill it or make it read-only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")

    class Disk:
        path = mount

        def fill(self):
            import os

            fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)  # every byte the filesystem has left
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)

        def read_only(self):
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)

    yield Disk()
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def old_output(folder: Path) -> Path:
    """What an earlier run left at the output: it must still be there, unchanged, after the failed write."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"old": true}\n')
    return folder


def predictions(path: Path) -> Path:
    rows = [{"id": f"q{i}", "question": f"What causes gout {i}?", "reference": "Uric acid.", "prediction": "Acid."}
            for i in range(3)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def commands(tmp: Path, disk: Path, run: Path) -> dict:
    """Each command that writes, its output on the small disk."""
    data = prepare_demo_data(tmp / "data")
    preds = predictions(tmp / "preds.jsonl")
    return {
        "data": (
            [
                "scripts/prepare_data.py",
                SAMPLE,
                "--out",
                disk / "out",
                "--val-fraction",
                "0.1",
                "--test-fraction",
                "0.1",
            ],
            disk / "out",
        ),
        "merge": (["scripts/merge.py", run, "--out", disk / "out"], disk / "out"),
        "eval answers": (
            [
                "eval/generate.py",
                run,
                "--data",
                data,
                "--n",
                "2",
                "--max-new-tokens",
                "4",
                "--no-perplexity",
                "--out",
                disk / "out" / "tuned.jsonl",
            ],
            disk / "out",
        ),  # fmt: skip
        "eval scores": (["eval/score.py", preds, "--baseline", preds, "--out", disk / "out"], disk / "out"),
        "dpo's pairs": (
            [
                "scripts/pairs.py",
                run,
                "--data",
                data,
                "--out",
                disk / "out",
                "--n",
                "2",
                "--rule",
                "spin",
                "--max-new-tokens",
                "4",
            ],
            disk / "out",
        ),  # fmt: skip
    }


@pytest.mark.parametrize("fault", ["full", "read-only"])
@pytest.mark.parametrize("command", ["data", "merge", "eval answers", "eval scores", "dpo's pairs"])
def test_a_full_disk_or_a_read_only_folder_is_one_line_and_changes_nothing(command, fault, disk, tmp_path, tiny_run):
    argv, out = commands(tmp_path, disk.path, tiny_run)[command]
    if command == "merge":  # make merge refuses an existing output: the older things sit beside it
        old_output(disk.path / "beside")
    else:
        old_output(out)
    disk.fill() if fault == "full" else disk.read_only()
    before = snapshot(disk.path)
    result = run_main(*argv)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [x for x in result.stderr.strip().splitlines() if "it/s]" not in x]  # but a progress bar: one line
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    if fault == "full":
        assert "no space left on the device" in lines[0] and "could not be written" in lines[0] and "free)" in lines[0]
    else:
        assert "cannot write here (a read-only filesystem, or no permission)" in lines[0]
    assert lines[0].startswith(f"error: {disk.path}")  # the folder
    assert snapshot(disk.path) == before


def test_the_report_on_a_read_only_folder_is_one_line(disk, tmp_path):
    folder = disk.path / "eval" / "test"
    folder.mkdir(parents=True)
    for name in ("base", "tuned"):
        predictions(folder / f"{name}.jsonl")
    result = run_main("eval/score.py", folder / "tuned.jsonl", "--baseline", folder / "base.jsonl", "--out", folder)
    assert result.returncode == 0, result.stderr
    disk.read_only()
    before = snapshot(disk.path)
    result = run_main("eval/report.py", folder, "--run", tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "cannot write here" in result.stderr and snapshot(disk.path) == before


def test_finetune_refuses_a_run_whose_checkpoints_will_not_fit_unless_told_to_go_on(disk, tmp_path, tiny_model):
    """make finetune (and make plan) weigh the checkpoints save_total_limit keeps and the adapter against the free
    space of the output folder, before any training."""
    data = prepare_demo_data(tmp_path / "data")
    argv = ["scripts/finetune.py", "recipes/smollm2-135m/qlora.yml", "--data", data, "--output-dir", disk.path / "run",
            "--set", f"base_model={tiny_model}", "--set", "sequence_len=128", "--set", "save_steps=1",
            "--set", "max_steps=20", "--set", "eval_strategy=no"]  # fmt: skip
    before = snapshot(disk.path)
    result = run_main(*argv)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    line = result.stderr.strip()
    assert f"error: {disk.path / 'run'}: the run needs about" in line and "checkpoint(s) of" in line
    assert "MB is free" in line or "kB is free" in line
    assert "GO_ON=1" in line and not (disk.path / "run" / "recipe.yml").exists()
    assert snapshot(disk.path) == before
    plan = run_main("scripts/plan.py", "recipes/smollm2-135m/qlora.yml", "--data", data,
                    "--set", f"base_model={tiny_model}", "--set", "sequence_len=128", "--set", "save_steps=1",
                    "--set", "max_steps=20", "--set", f"output_dir={disk.path / 'run'}")  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "disk        about" in plan.stdout and "make finetune will refuse it (GO_ON=1 trains anyway)" in plan.stdout


@pytest.mark.slow
def test_a_disk_that_fills_under_a_checkpoint_is_one_line_and_keeps_the_checkpoints_before_it(tmp_path, tiny_model):
    """Training on a disk with room for the run's first files but not its checkpoints: one line naming the folder,
    the half-written checkpoint removed, no traceback; the checkpoints before it stay."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        data = prepare_demo_data(tmp_path / "data")
        out = mount / "run"
        result = run_main("scripts/finetune.py", "recipes/smollm2-135m/qlora.yml", "--data", data,
                            "--output-dir", out, "--go-on", "--set", f"base_model={tiny_model}",
                            "--set", f"dataset_prepared_path={tmp_path / 'prepared'}", "--set", "sequence_len=128",
                            "--set", "save_steps=2", "--set", "max_steps=30", "--set", "eval_strategy=no",
                            "--set", "use_tensorboard=false")  # fmt: skip
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        assert "Traceback" not in result.stdout + result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: {out}: the disk is full (or read-only)") and "free" in line
        assert "could not be written and is removed" in line or "no checkpoint was saved" in line
        from medqa.integrity import checkpoint_problem

        assert all(checkpoint_problem(c) is None for c in out.glob("checkpoint-*"))  # nothing half-written left
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def held(argv: list, point: str, tmp: Path) -> subprocess.Popen:
    """A command started and stopped at a pause point (medqa.fsutil.pause_point), still holding what it holds."""
    marker = tmp / f"held-at-{point}"
    proc = subprocess.Popen([sys.executable, *map(str, argv)], cwd=REPO, env={**ENV, PAUSE: f"{point}:{marker}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    start = time.monotonic()
    while proc.poll() is None and not marker.is_file() and time.monotonic() - start < 300:
        time.sleep(0.05)
    if not marker.is_file():
        proc.kill()
        pytest.fail(f"{argv[0]} never reached {point!r}: {proc.communicate()[1][-1500:]}")
    return proc


def test_one_writer_for_each_run_folder(tmp_path, tiny_model, tiny_run):
    """A second make finetune, or a make merge, on a run folder that a make finetune is writing refuses in one line
    naming that process; once it has died (killed, no clean-up), the folder is free again."""
    data = prepare_demo_data(tmp_path / "data")
    out = tmp_path / "run"
    argv = ["scripts/finetune.py", "recipes/smollm2-135m/qlora.yml", "--data", data, "--output-dir", out,
            "--set", f"base_model={tiny_model}", "--set", "sequence_len=128", "--set", "max_steps=1",
            "--set", "eval_strategy=no"]  # fmt: skip
    first = held(argv, "train", tmp_path)
    try:
        before = snapshot(out)
        second = run_main(*argv)
        assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr[-2000:]
        assert f"error: {out}: another command is writing this run folder: process {first.pid} (finetune.py " in (
            second.stderr
        )
        merged = run_main("scripts/merge.py", out, "--out", out / "merged")  # the folder, as a run, is not done
        assert merged.returncode == 2 and len(merged.stderr.strip().splitlines()) == 1
        assert snapshot(out) == before
    finally:
        first.send_signal(signal.SIGKILL)  # dies without a word: its lock goes with it
        first.wait()
    # a finished run copied in: make merge on it takes the lock the dead process left behind
    for path in tiny_run.iterdir():
        if path.is_file():
            (out / path.name).write_bytes(path.read_bytes())
    merged = run_main("scripts/merge.py", out)
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert (out / "merged" / "config.json").is_file()

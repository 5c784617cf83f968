"""Ctrl-C or a kill in the middle of a command that writes (make benchmark's: test_benchmark.py): each output is
whole or absent (an older one stays as it was), nothing half-written or temporary is left, the command says it was
interrupted, and a rerun does the work or says it is done. Each command starts with SIGINT and SIGTERM at their
defaults, however the suite was started, and gets its signal at a known point of its work (medqa.fsutil.pause_point),
not after a guess of time."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ENV, MEDQUAD, REPO, prepare_demo_data, run_main, run_script
from test_damage import snapshot

from medqa.fsutil import PAUSE


def default_signals():
    """In the child, before it starts: SIGINT and SIGTERM at their defaults, whatever this process inherited (a suite
    started from a background job inherits SIGINT ignored, and Python then installs no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interrupt(
    argv: list, point: str, tmp: Path, sig=signal.SIGINT, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a command, send `sig` when it reaches the pause point `point` (medqa.fsutil.pause_point: "write", an output
    being written; "answer", a first batch of answers made), and wait for it to end."""
    marker = tmp / f"paused-at-{point}"
    env = {**ENV, PAUSE: f"{point}:{marker}"}
    proc = subprocess.Popen([sys.executable, *map(str, argv)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)  # fmt: skip
    start = time.monotonic()
    while proc.poll() is None and not marker.is_file() and time.monotonic() - start < timeout:
        time.sleep(0.05)
    if not marker.is_file():
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{argv[0]} never reached its pause point {point!r} in {timeout:.0f} s (exit {proc.returncode}): "
                    f"{err[-1500:]}")  # fmt: skip
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # no command left behind, still paused
        out, err = proc.communicate()
        pytest.fail(f"{argv[0]} was still running 120 s after signal {sig} at its pause point {point!r}: {err[-1500:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def temporary(parent: Path) -> list[Path]:
    return [p for p in parent.glob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def assert_stopped(result, sig):
    assert result.returncode == 128 + sig, (result.returncode, result.stderr[-2000:])
    assert result.stderr.strip().splitlines()[-1].startswith("error: interrupted"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not MEDQUAD.is_file(), reason="MedQuAD not found")
def test_make_data_interrupted_while_writing_keeps_the_old_output(tmp_path):
    out = tmp_path / "medqa"
    prepare_demo_data(out)  # a finished output from before
    before = snapshot(out)
    result = interrupt(["scripts/prepare_data.py", MEDQUAD, "--out", out], "write", tmp_path)
    assert_stopped(result, signal.SIGINT)
    assert snapshot(out) == before and not temporary(tmp_path)
    again = run_script("scripts/prepare_data.py", MEDQUAD, "--out", out, "--limit", "50")
    assert again.returncode == 0 and (out / "manifest.json").is_file() and snapshot(out) != before


def test_merge_killed_while_writing_leaves_nothing(tmp_path, tiny_run):
    out = tmp_path / "merged"
    result = interrupt(["scripts/merge.py", tiny_run, "--out", out], "write", tmp_path, signal.SIGTERM)
    assert_stopped(result, signal.SIGTERM)
    assert not out.exists() and not temporary(tmp_path)
    again = run_main("scripts/merge.py", tiny_run, "--out", out)
    assert again.returncode == 0 and (out / "config.json").is_file() and (out / "README.md").is_file()


@pytest.mark.parametrize("command", ["eval", "pairs"])
def test_answering_interrupted_leaves_no_output(command, tmp_path, tiny_run):
    """make eval's answers and make dpo's pairs are written once at the end: stopped before, there is none."""
    data = prepare_demo_data(tmp_path / "data")
    out = tmp_path / ("tuned.jsonl" if command == "eval" else "pairs")
    argv = {
        "eval": ["eval/generate.py", tiny_run, "--data", data, "--split", "train", "--max-new-tokens", "8",
                 "--no-stop-on-loop", "--batch-size", "4", "--out", out],
        "pairs": ["scripts/pairs.py", tiny_run, "--data", data, "--out", out, "--n", "8", "--max-new-tokens", "8"],
    }[command]  # fmt: skip
    result = interrupt(argv, "answer", tmp_path)
    assert_stopped(result, signal.SIGINT)
    assert not out.exists() and not temporary(tmp_path) and not out.with_suffix(".meta.json").exists()

"""Run jobs side by side on the GPUs: each job pinned to the GPU with the fewest jobs, the longest first, a job
started once the jobs it waits for have finished; finished jobs are skipped, so a second call goes on where a
stop left off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from medqa.errors import UserError
from medqa.fsutil import atomic_write_text, recover
from medqa.integrity import read_json
from medqa_lab.levers.plan import Job


def visible_gpus(count: int) -> list[str]:
    """The ids to put in a job's CUDA_VISIBLE_DEVICES: this process's own list where it has one."""
    mine = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return mine[:count] if mine else [str(i) for i in range(count)]


def run_jobs(
    jobs: list[Job], work: Path, parallel: int, gpus: int, deadline: float | None = None, only: set | None = None
) -> dict:
    """Run the jobs (those named in `only`, where given), `parallel` at a time; skip finished ones. Returns
    {job: {"rc", "seconds", "gpu"}} for the jobs run, each also written to WORK/jobs.json as it ends (beside earlier
    calls'; a job that finished as its runner was killed, before its record, has none).

    A job starts once the jobs in its `after` have left their file; one outside `only` is another runner's
    (on other GPUs): the job waits for its file. At the deadline (seconds from now) running jobs are stopped;
    run again to go on (training resumes from its newest checkpoint)."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ran: dict = {}
    by_name = {j.name: j for j in jobs}
    selected = [j for j in jobs if only is None or j.name in only]
    recover(work / "jobs.json")  # the temporary copy of a runner killed as it wrote the record
    read_record(work)  # a damaged record: one line, before anything runs
    pending = [j for j in sorted(selected, key=lambda j: -j.weight) if not j.done.exists()]
    # a job that others wait for (a training run) is not needed once all of them have finished
    needed = {a for j in jobs if not j.done.exists() for a in j.after}
    pending = [j for j in pending if j.name in needed or not any(j.name in o.after for o in jobs)]
    failed: set[str] = set()
    retried: set[str] = set()  # jobs started again after running out of GPU memory (once each)
    offsets: dict[str, int] = {}  # where each job's log was when it started (a log is appended to by each call)
    running: dict[str, tuple[subprocess.Popen, Job, str, float]] = {}
    stop_at = time.time() + deadline if deadline else None
    devices = visible_gpus(gpus)
    said_waiting = 0.0

    def stop_all(*_):
        for proc, *_rest in running.values():
            with_group(proc, signal.SIGTERM)
        for proc, *_rest in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_group(proc, signal.SIGKILL)

    main_thread = threading.current_thread() is threading.main_thread()  # only it may handle signals
    previous = signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(143))) if main_thread else None
    finished = False
    try:
        while pending or running:
            for name, (proc, job, gpu, started) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                ok = proc.returncode == 0 and job.done.exists()
                if not ok and name not in retried and out_of_memory(logs / f"{name}.log", offsets.get(name, 0)):
                    # the card was full of the other jobs: once more, with one job fewer at a time from now on
                    retried.add(name)
                    pending.insert(0, job)
                    parallel = max(1, min(parallel, len(running) + 1) - 1)
                    print(f"[levers] {name} ran out of GPU memory: again, {parallel} job(s) at a time", flush=True)
                    continue
                if not ok:
                    failed.add(name)
                ran[name] = {"rc": proc.returncode, "seconds": round(time.time() - started, 1), "gpu": gpu}
                save_record(work, {name: ran[name]})
                print(f"[levers] {'done' if ok else 'FAILED'} {name} ({ran[name]['seconds']:.0f} s)", flush=True)
            for job in [j for j in pending if any(a in failed for a in j.after)]:
                pending.remove(job)
                failed.add(job.name)
                print(
                    f"[levers] skipped {job.name}: {', '.join(a for a in job.after if a in failed)} failed", flush=True
                )
            startable = [j for j in pending if all(by_name[a].done.exists() for a in j.after)]
            if pending and not running and not startable:
                mine = {j.name for j in selected}
                if all(a in mine for j in pending for a in j.after if not by_name[a].done.exists()):
                    break  # waiting only for jobs of this call that did not finish
                if time.time() - said_waiting > 60:
                    waiting = sorted({a for j in pending for a in j.after if not by_name[a].done.exists()})
                    print(f"[levers] waiting for another runner's {', '.join(waiting)}", flush=True)
                    said_waiting = time.time()
            while startable and len(running) < parallel:
                job = startable.pop(0)
                pending.remove(job)
                load = {d: sum(1 for *_p, g, _s in running.values() if g == d) for d in devices or [""]}
                gpu = min(load, key=load.get)
                env = {"AXOLOTL_DATASET_NUM_PROC": "2", "OMP_NUM_THREADS": "2", **os.environ}  # a job's own share
                if devices:
                    env["CUDA_VISIBLE_DEVICES"] = gpu
                log = open(logs / f"{job.name}.log", "a")  # noqa: SIM115 - closed with the process
                offsets[job.name] = log.tell()
                proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                        preexec_fn=_end_with_parent)  # fmt: skip
                running[job.name] = (proc, job, gpu, time.time())
                print(f"[levers] start {job.name}" + (f" on GPU {gpu}" if devices else ""), flush=True)
            if stop_at and time.time() > stop_at:
                if running:
                    print(f"[levers] deadline: stopping {', '.join(running)}; run again to go on", flush=True)
                    stop_all()
                break
            time.sleep(0.25)  # a finished job starts the next within a quarter second
        finished = True
    finally:
        if not finished:  # Ctrl-C (SIGINT reaches this process group only) or an error: the jobs stop with it
            stop_all()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return ran


def read_record(work: Path) -> dict:
    """WORK/jobs.json: {job: {"rc", "seconds", "gpu"}} of every call so far."""
    path = work / "jobs.json"
    fix = "the runner's record of its jobs: remove it (the jobs' outputs are kept)"
    record = read_json(path, fix) if path.is_file() else {}
    if not isinstance(record, dict):
        raise UserError(path, f"not a mapping of jobs: {fix}")
    return record


def save_record(work: Path, jobs: dict) -> None:
    """Add `jobs` to WORK/jobs.json, read again first (another runner on other GPUs may have written to it), replaced
    whole."""
    atomic_write_text(work / "jobs.json", json.dumps({**read_record(work), **jobs}, indent=2) + "\n")


OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "the GPU ran out of memory")


def out_of_memory(log: Path, offset: int) -> bool:
    """Whether a job's log says it ran out of GPU memory, in what the job wrote there (from `offset` on)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(offset, log.stat().st_size - 20000))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    return any(marker in tail for marker in OOM_MARKERS)


def _end_with_parent() -> None:
    """In a job's process, before it runs: a SIGTERM when the runner dies, however it dies (a SIGKILL included),
    so that no job goes on writing, or holding a GPU, for a runner that is gone (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def with_group(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass

"""One writer for each run folder: `make finetune`, `make merge`, `make dpo` (and its pairs), `make gguf` hold a lock
on the run folder they write while they run. A second one refuses in one line naming the process that holds it. The
lock is the operating system's (flock on a file named by the folder's absolute path, in the machine's temporary
folder: the run folder itself is left as it is), so it goes with the process that held it, however it ended: a lock
left by a command that died blocks nothing. It holds between the commands of one machine. The commands a holder
starts (make dpo's merge, pairs and DPO) are told which folders their parent holds (MEDQA_LOCKED) and write there
without taking the lock again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from medqa.errors import UserError

HELD = "MEDQA_LOCKED"  # folders this process's parent holds, os.pathsep-separated


def _held() -> list[str]:
    return [p for p in os.environ.get(HELD, "").split(os.pathsep) if p]


def lock_file(folder: Path) -> Path:
    """Where the lock of a run folder lives: one file a folder (by its absolute path), in the temporary folder."""
    locks = Path(tempfile.gettempdir()) / "medqa-locks"
    locks.mkdir(mode=0o777, exist_ok=True)
    return locks / (hashlib.sha256(str(Path(folder).absolute()).encode()).hexdigest()[:32] + ".lock")


@contextmanager
def run_lock(folder: Path):
    """Hold the run folder's lock while the block runs."""
    folder = Path(folder).absolute()
    if str(folder) in _held():  # the parent holds it for us
        yield
        return
    fd = os.open(lock_file(folder), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise UserError(folder, f"another command is writing this run folder: {holder}; wait for it to end "
                                    "(or stop it), then run this again") from None  # fmt: skip
        os.ftruncate(fd, 0)
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
        os.pwrite(fd, f"process {os.getpid()} ({command})".encode(), 0)
        before = os.environ.get(HELD)
        os.environ[HELD] = os.pathsep.join([*_held(), str(folder)])  # for the commands it starts
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(HELD, None)
            else:
                os.environ[HELD] = before
    finally:
        os.close(fd)  # closing releases the lock


def lock_for(run: Path, out: Path):
    """The run folder's lock where `out` is inside it (make merge's RUN/merged, make dpo's RUN/pairs-RULE); nothing
    where the output goes elsewhere (a lever study's pairs folder), so that readers of a finished run run side by
    side."""
    from contextlib import nullcontext

    run, out = Path(run).absolute(), Path(out).absolute()
    return run_lock(run) if run == out or run in out.parents else nullcontext()

"""Outputs appear whole or not at all: build under a temporary name beside the target, then rename. A write the
machine refuses (its disk full, the folder read-only) is one line naming the folder, what was being written, and
the space it needs and has where that can be known; what was there before stays as it was."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from medqa.errors import UserError

PAUSE = "MEDQA_PAUSE_AT"  # NAME:FILE: a test's hook, the command waits at pause_point(NAME) once it has written FILE


def pause_point(name: str) -> None:
    """A known point of a command's work where a test stops it (the interrupt tests): with MEDQA_PAUSE_AT=NAME:FILE in
    the environment, the command writes FILE (its process id) on reaching pause_point(NAME), then waits there (for
    the signal the test sends; ten minutes at most). Without it, nothing happens. Points: "write", an output being
    written (its temporary copy whole, not yet in place); "answer", a first batch of answers made; "train", make
    finetune holding its run folder, about to start Axolotl; "scored", make benchmark with one model scored."""
    at, _, marker = os.environ.get(PAUSE, "").partition(":")
    if at != name or not marker:
        return
    Path(marker).write_text(str(os.getpid()))
    for _ in range(6000):  # short sleeps: a signal that the kernel hands to another thread (tqdm's monitor, say)
        time.sleep(0.1)  # runs its handler here within 0.1 s, where one long sleep would not wake for it


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def sha256_file(path: Path) -> str:
    """A file's sha256, read a megabyte at a time."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def free_bytes(folder: Path) -> int | None:
    """The space free for this user on the filesystem that holds `folder` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def size_text(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:  # in whole numbers: a recipe may ask for more than a float holds
            tenths = (int(n) * 10 + scale // 2) // scale
            return f"{tenths // 10}.{tenths % 10} {unit}"
    return f"{n} bytes"


def machine_fault(err: BaseException) -> str | None:
    """'full' or 'read-only' where a write failed because of the machine, not the data (libraries that write in
    C, such as safetensors, report it in their message)."""
    code, text = getattr(err, "errno", None), str(err)
    if code in DISK_FULL or "No space left on device" in text or "Disk quota exceeded" in text:
        return "full"
    if code in NOT_WRITABLE or "Read-only file system" in text or "Permission denied" in text:
        return "read-only"
    return None


def write_error(err: BaseException, folder: Path, what: str, needs: int | None = None):
    """The one line (medqa.errors.UserError) for a write the machine refused, or None for any other failure."""
    fault = machine_fault(err)
    if fault == "full":
        need = f"it needs about {size_text(needs)}, " if needs else ""
        return UserError(folder, f"no space left on the device: {what} could not be written ({need}"
                                 f"{size_text(free_bytes(folder))} free)")  # fmt: skip
    if fault == "read-only":
        return UserError(folder, f"cannot write here (a read-only filesystem, or no permission): {what} could not "
                                 "be written")  # fmt: skip
    return None


def check_writable(folder: Path, what: str) -> None:
    """Before long work: a folder the output cannot be written into (read-only, no permission) is one line now,
    not after the work (a full disk is found when the output is written)."""
    folder = Path(folder)
    with writing(folder, what):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".write-check-*-*"):  # a probe of a check that was killed
            pid = stale.name.split("-")[2]
            if pid.isdigit() and not _alive(int(pid)):
                stale.unlink(missing_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".write-check-{os.getpid()}-", dir=folder)
        os.close(fd)
        os.unlink(probe)


@contextmanager
def writing(folder: Path, what: str, needs: int | None = None):
    """Around a write into `folder`: the machine's refusal becomes write_error's one line."""
    try:
        yield
    except Exception as err:  # OSError, or a library's own error class carrying the OS's message
        problem = write_error(err, Path(folder), what, needs)
        if problem is None:
            raise
        raise problem from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def recover(out: Path) -> None:
    """What a writer of `out` killed with SIGKILL (or by a lost machine) left beside it, cleaned up before the next
    write: its temporary copy (`.NAME.tmp-PID-*`) removed, and an old output it had moved aside (`.NAME.old-PID`)
    put back where the new one never arrived, else removed. Only a dead writer's: the process id is in the name."""
    out = Path(out)
    if not out.parent.is_dir():
        return
    for leftover in out.parent.glob(f".{out.name}.*-*"):
        kind, _, rest = leftover.name[len(out.name) + 2 :].partition("-")
        pid = rest.split("-")[0]
        if kind not in ("tmp", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not out.exists():
            os.replace(leftover, out)
        elif leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def atomic_dir(out: Path, what: str | None = None, needs: int | None = None):
    """Yield a temporary folder; on success it replaces `out` (any old `out` goes only then). `what` names the output
    in an error (default: the folder's name) and `needs` is the space it takes, where known."""
    out = Path(out)
    what = what or out.name
    with writing(out.parent, what, needs):
        recover(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        with writing(out.parent, what, needs):
            yield tmp
        pause_point("write")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:  # stopped between the two renames: the old output goes back
            if old is not None and not out.exists():
                os.replace(old, out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: Path, text: str, what: str | None = None) -> None:
    path = Path(path)
    data = text.encode("utf-8")
    with writing(path.parent, what or path.name, len(data)):
        recover(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # a full disk says so here, not at a later close
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

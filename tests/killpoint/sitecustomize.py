"""A kill at a chosen write (tests/test_kill.py): in every Python process of a command started with this folder on
PYTHONPATH and MEDQA_KILL_UNDER set, each write under that folder (a file opened for writing, a rename or replace
onto a path there, a folder made or removed) is counted in MEDQA_KILL_COUNT (one byte a write, shared by the
command's processes; with MEDQA_KILL_MATCH, only writes whose path holds that text); at write number MEDQA_KILL_AT
the command is killed with SIGKILL, before that write happens, as a kill -9 or a machine that loses power would
stop it: the process group of its first process and that of the process writing (a job the lever runner started in
a session of its own). Without MEDQA_KILL_AT the writes are only counted."""

import os
import signal
import sys
import threading

_UNDER = os.environ.get("MEDQA_KILL_UNDER")
_COUNT = os.environ.get("MEDQA_KILL_COUNT")
_AT = int(os.environ.get("MEDQA_KILL_AT") or 0)
_MATCH = os.environ.get("MEDQA_KILL_MATCH") or ""  # only writes whose path holds this text (a checkpoint's)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_inside = threading.local()


def _under(path) -> bool:
    try:
        full = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return full.startswith(_UNDER) and _MATCH in full


def _is_write(event: str, args) -> bool:
    if event == "open":
        path, mode, flags = (list(args) + [None, None])[:3]
        if isinstance(path, int) or path is None:
            return False
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        return bool(writing) and _under(path)
    if event in ("os.rename", "os.replace"):
        return _under(args[1])
    if event in ("os.mkdir", "os.rmdir", "os.remove", "shutil.rmtree"):
        return _under(args[0])
    return False


def _hook(event, args):
    if getattr(_inside, "busy", False) or not _is_write(event, args):
        return
    _inside.busy = True
    try:
        fd = os.open(_COUNT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"w")
            n = os.lseek(fd, 0, os.SEEK_CUR)  # where this process's byte landed: its write's number
        finally:
            os.close(fd)
        if _AT and n == _AT:
            os.killpg(int(os.environ["MEDQA_KILL_GROUP"]), signal.SIGKILL)
            os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        _inside.busy = False


if _UNDER and _COUNT:
    _UNDER = os.path.abspath(_UNDER)
    os.environ.setdefault("MEDQA_KILL_GROUP", str(os.getpgrp()))  # the command's first process; its children inherit
    sys.addaudithook(_hook)

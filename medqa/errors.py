"""One-line errors for bad user input: `error: <file>: <problem>`, exit code 2, no traceback."""

from __future__ import annotations

import functools
import sys
from pathlib import Path


class UserError(Exception):
    """A problem with something the user gave us (a file, a recipe, an option)."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = str(where), problem


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its class name): for a one-line error about a library's failure."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


def last_line(output: str, limit: int = 300) -> str:
    """The last line a failed process wrote (where its error is), or "no output"."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return (lines or ["no output"])[-1][:limit]


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal (Ctrl-C is SIGINT; a kill, SIGTERM): unwinds like Ctrl-C, so that every output
    being written is removed or finished (medqa.fsutil) before the process ends."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Interrupted(signum)


def cli(main):
    """Decorate a script's main(): UserError becomes one line on stderr and exit code 2; Ctrl-C or a kill
    (SIGTERM) one line, "interrupted", and 128 + the signal's number, after outputs being written are cleaned up."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        import signal

        try:
            signal.signal(signal.SIGTERM, _stop)
        except ValueError:  # not the main thread: leave signals to it
            pass
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except OSError as err:  # a write the machine refused outside medqa.fsutil's writers: still one line
            from medqa.fsutil import write_error

            folder = Path(err.filename).parent if getattr(err, "filename", None) else Path.cwd()
            problem = write_error(err, folder, Path(err.filename).name if err.filename else "a file")
            if problem is None:
                raise
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as err:
            print("error: interrupted (nothing half-written is left; run the command again)", file=sys.stderr)
            sys.exit(128 + (err.signum if isinstance(err, Interrupted) else signal.SIGINT))

    return wrapper

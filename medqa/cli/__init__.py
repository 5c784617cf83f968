"""Every command's code: one module a command, each with a `main()` that parses its options and runs it. The files
under scripts/ and eval/ that users and the Makefile run are a few lines that call these; the library runs the same
modules as processes where it needs one (`python -m medqa.cli.finetune ...`: a lever plan's jobs, make dpo's steps).
`command` wraps each main(): one line for bad input or a machine fault, exit code 2, no traceback; Ctrl-C or a kill
leaves nothing half-written."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
from pathlib import Path

from medqa.errors import UserError, one_line
from medqa.fsutil import write_error


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal (Ctrl-C is SIGINT; a kill, SIGTERM): unwinds like Ctrl-C, so that every output
    being written is removed or finished (medqa.fsutil) before the process ends."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Interrupted(signum)


def command(main):
    """Decorate a script's main(): UserError becomes one line on stderr and exit code 2; Ctrl-C or a kill
    (SIGTERM) one line, "interrupted", and 128 + the signal's number, after outputs being written are cleaned up."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            signal.signal(signal.SIGTERM, _stop)
        except ValueError:  # not the main thread: leave signals to it
            pass
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {one_line(str(err))}", file=sys.stderr)
            sys.exit(2)
        except OSError as err:  # a write the machine refused outside medqa.fsutil's writers: still one line
            folder = Path(err.filename).parent if getattr(err, "filename", None) else Path.cwd()
            problem = write_error(err, folder, Path(err.filename).name if err.filename else "a file")
            if problem is None:
                raise
            print(f"error: {one_line(str(problem))}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as err:
            print("error: interrupted (nothing half-written is left; run the command again)", file=sys.stderr)
            sys.exit(128 + (err.signum if isinstance(err, Interrupted) else signal.SIGINT))

    return wrapper


def run_module(argv: list[str]) -> None:
    """One step of a command in a process of its own (`python -m MODULE ...`), as make would run it; its failure,
    said in its own one line, ends this command with its exit code."""
    code = subprocess.run([sys.executable, "-m", *argv]).returncode
    if code:
        sys.exit(code)

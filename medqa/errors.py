"""One-line errors for bad user input and the machine's faults: `error: <file>: <problem>`; the commands' wrapper
(medqa.cli.command) prints them, exits with code 2 and shows no traceback."""

from __future__ import annotations

from contextlib import contextmanager


class UserError(Exception):
    """A problem with something the user gave us (a file, a recipe, an option)."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = str(where), problem


def one_line(text: str) -> str:
    """The text with every character that is not printable (line breaks, form feeds, NUL: what a file's own column
    names or values may hold) written as its escape, so that an error is one line whatever it quotes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its class name): for a one-line error about a library's failure."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


def last_line(output: str, limit: int = 300) -> str:
    """The last line a failed process wrote (where its error is), or "no output"."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return (lines or ["no output"])[-1][:limit]


@contextmanager
def loading(where, what: str):
    """Around a library reading files the user gave (a run folder's tokenizer, config and adapter): whatever the
    library raises, where the files parse but do not hold what it expects (a value of another type, a key missing),
    is one line naming them. A machine fault (disk full, read-only) is left to the command's wrapper."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:  # each library raises its own classes; every one here means "cannot be loaded"
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise UserError(where, f"{what}: {first_line(err)}") from None

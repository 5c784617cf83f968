"""Where an answer starts to loop, and a stopping criterion that ends it there.

An answer loops when it repeats itself, in either of two ways:
- a block of words written again right after itself: a unit of p words followed by the same p words, repeated
  until the copies cover at least `max(2p, MIN_WORDS)` words ("A B C D A B C D"; "very very" is not a loop,
  eight times "very" is); it starts to loop where the second copy begins;
- a phrase that keeps coming back: a sequence of LOOP_WORDS words written for the LOOP_TIMES-th time (what
  `medqa.scoring` counts as a loop: "It is more common in men older than 65. It is more common in men older
  than 55. ..."); it starts to loop where the phrase came back the first time.
Cutting where it starts to loop keeps the first copy and everything before it, so a cut answer never loops by
the scorer's count. Words are compared lower-cased, split on whitespace.

The same `LoopWatch` reads an answer after the fact (`loop_cut`) and while it is generated (`loop_stop`, a
transformers stopping criterion): both stop at the first loop to be completed and cut it at the same place,
so a greedy answer generated with the criterion is the greedy answer without it, cut.
"""

from __future__ import annotations

import re
from collections import Counter

MIN_WORDS = 8  # the copies of a repeated block cover at least this many words
LOOP_WORDS, LOOP_TIMES = 4, 4  # a phrase of 4 words written a 4th time
_WORD = re.compile(r"\S+")


def has_loop(text: str, n: int = LOOP_WORDS, times: int = LOOP_TIMES) -> bool:
    """True when some sequence of `n` words (lower-cased, split on whitespace) occurs `times` times or more."""
    words = text.lower().split()
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return bool(counts) and max(counts.values()) >= times


class LoopWatch:
    """Reads words one at a time; `add` returns the index of the word where the answer starts to loop once the
    first loop is complete, else None."""

    def __init__(self, min_words: int = MIN_WORDS, n: int = LOOP_WORDS, times: int = LOOP_TIMES):
        self.min_words, self.n, self.times = min_words, n, times
        self.words: list[str] = []
        self.runs: list[int] = [0]  # runs[p]: how many words in a row (up to the last) equal the word p before
        self.phrases: dict[tuple, list[int]] = {}  # where each n-word phrase starts

    def add(self, word: str) -> int | None:
        words, runs, e = self.words, self.runs, len(self.words)
        word = word.lower()
        words.append(word)
        runs.append(0)
        found = None
        for p in range(1, e + 1):
            if word == words[e - p]:
                runs[p] += 1
                # the copies cover runs[p] + p >= max(2p, min_words) words: a repeated block is complete
                if runs[p] >= p and runs[p] + p >= self.min_words:
                    found = min(found if found is not None else e, e + 1 - runs[p])
            else:
                runs[p] = 0
        if e + 1 >= self.n:
            starts = self.phrases.setdefault(tuple(words[e + 1 - self.n :]), [])
            starts.append(e + 1 - self.n)
            if len(starts) >= self.times:  # a phrase written the times-th time: cut where it first came back
                found = min(found if found is not None else e, starts[1])
        return found


def loop_cut(text: str, min_words: int = MIN_WORDS) -> int | None:
    """The character offset where `text` starts to loop (None: no loop); `text[:offset]` keeps what came before."""
    watch = LoopWatch(min_words)
    spans = [m.span() for m in _WORD.finditer(text)]
    for start, end in spans:
        at = watch.add(text[start:end])
        if at is not None:
            return spans[at][0]
    return None


def cut_loop(text: str) -> tuple[str, bool]:
    """The answer up to where it starts to loop, and whether it was cut."""
    at = loop_cut(text)
    return (text, False) if at is None else (text[:at].rstrip(), True)


def loop_stop(tokenizer, prompt_width: int, every: int = 16):
    """A stopping criterion that ends each answer of a batch once it has completed a loop (checked every `every`
    new tokens; the answer is then cut with `cut_loop`). `prompt_width`: the padded prompt length."""
    import torch
    from transformers import StoppingCriteria

    class LoopStop(StoppingCriteria):
        def __init__(self):
            self.watches: dict[int, LoopWatch] = {}
            self.seen: dict[int, int] = {}  # words already given to each row's watch
            self.looped: set[int] = set()
            self.calls = 0

        def __call__(self, input_ids, scores, **kwargs):
            self.calls += 1
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if self.calls % every:
                return done
            for row, text in enumerate(tokenizer.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=True)):
                if row in self.looped:
                    continue
                words = _WORD.findall(text)
                if words and not text[-1].isspace():
                    words.pop()  # the last word may not be finished
                watch = self.watches.setdefault(row, LoopWatch())
                for word in words[self.seen.get(row, 0) :]:
                    if watch.add(word) is not None:
                        self.looped.add(row)
                        break
                self.seen[row] = len(words)
            if self.looped:
                done[sorted(self.looped)] = True
            return done

    return LoopStop()

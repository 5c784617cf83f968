"""A lever spec (YAML): a reference recipe and its variants, one change at a time.

Each lever either trains its own run (the recipe with `set:` overrides, another `recipe:`, other `data:`, or a
preference stage `start:`ed from another lever's run) or reuses another lever's model (`model: NAME` or
`model: base`, at an `epoch:` of that run if it saved one per epoch) with other decoding settings (`decode:`).
Every lever answers the same held-out questions; the table compares each with the reference (or the lever named
by `compare_to:`), paired by question.

    recipe: recipes/smollm2-135m/qlora.yml
    data: data/medqa      # the prepared folder: its questions are answered, its training rows the default
    split: val            # where levers are compared (choose on val, report on test)
    n: 500
    train: {...}          # overrides for every training run that change speed, not the model's maths
    decode: {max_new_tokens: 256}
    levers:
      - {name: reference, about: the recipe as it is}
      - {name: epochs-6, about: 6 epochs, set: {num_epochs: 6, saves_per_epoch: 1}}
      - {name: epoch-4, about: 4 epochs, model: epochs-6, epoch: 4}
      - {name: rep-1.2, about: repetition_penalty 1.2, model: reference, decode: {repetition_penalty: 1.2}}
      - {name: dpo, about: a preference stage, recipe: recipes/smollm2-135m/dpo.yml, start: reference, rule: facttune}
    choose: {greedy: reference, candidates: [reference, rep-1.2], max_loop_rate: 0.05}
    test: {n: 1000, levers: [reference]}   # also answer the test split with these
    sets:                 # more question sets every lever answers (people's questions), each with its own table
      - {name: consumer-val, data: [data/mediqa, data/liveqa], split: val}
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from medqa import paths
from medqa.decoding import GenerationSettings
from medqa.errors import UserError
from medqa.preference import RULES
from medqa.recipe import load_recipe

BASE = "base"
LATEST = paths.RESULTS / "smollm2-135m" / "levers" / "round-8.yml"  # make levers' default: the latest round


@dataclass
class Lever:
    name: str
    about: str
    recipe: str
    set: dict = field(default_factory=dict)
    data: str | None = None  # a prepared data folder of its own to train on (default: the runner's --data, unless
    # `set:` names the lever's own `datasets`)
    start: str | None = None  # a preference stage on top of this lever's run: its merged model and pairs by `rule`
    pairs: int = 2000  # start: training questions the pairs are made from
    rule: str = "spin"  # start: how pairs are made (medqa.preference.RULES)
    samples: int = 4  # start, a sampled rule (ends, facttune): answers sampled per question
    temperature: float | None = None  # start, a sampled rule: their sampling temperature (default: the rule's)
    model: str | None = None  # another lever whose trained model this one reuses, or "base"
    cut_from: str | None = None  # another lever's greedy answers, cut where they start to loop (eval/cut_loops.py)
    epoch: float | None = None  # model: that run's checkpoint at the end of this epoch
    decode: dict = field(default_factory=dict)
    weights: str = "merged"  # how a tuned model is loaded (medqa.inference.load_model)
    n: int | None = None  # questions to answer (default: the spec's)
    test_only: bool = False  # answer the test split only (a check, not a lever to compare on the spec's split)
    prompt: str | None = None  # model: base: ask it with this trained lever's prompt (default: its own template)
    compare_to: str | None = None  # the table's paired difference: against this lever (default: the reference)

    @property
    def trains(self) -> bool:
        return self.model is None and self.cut_from is None

    @property
    def source(self) -> str:
        return self.name if self.trains else self.model or self.cut_from


@dataclass
class Choice:
    """How the decoding is chosen: among `candidates` (levers of one model), those that invent numbers in no
    more answers than `greedy` (plain greedy decoding of the same model) and loop in at most `max_loop_rate` of
    them; the best ROUGE-L wins."""

    greedy: str
    candidates: list[str]
    max_loop_rate: float = 0.05


@dataclass
class QuestionSet:
    """More questions every lever answers (but the test-only ones, or those in `levers`): the `split` of each
    prepared folder in `data`, one after the other; the first `n` (default: all)."""

    name: str
    data: list[str]
    split: str = "val"
    n: int | None = None
    levers: list[str] | None = None


@dataclass
class Spec:
    path: Path
    recipe: str
    split: str
    n: int
    train: dict
    decode: dict
    levers: list[Lever]
    test_n: int = 0
    test_levers: list[str] = field(default_factory=list)
    choose: Choice | None = None
    data: str = str(paths.SEED_DATA)  # the prepared data folder: every lever answers its questions; trains on its rows
    sets: list[QuestionSet] = field(default_factory=list)

    def answered(self, set_name: str) -> list[str]:
        """The levers that answer a question set (the spec's split, test, or one of `sets`)."""
        if set_name == self.split:
            return [lv.name for lv in self.levers if not lv.test_only]
        if set_name == "test":
            return list(self.test_levers)
        qs = next(q for q in self.sets if q.name == set_name)
        return qs.levers or [lv.name for lv in self.levers if not lv.test_only]

    @property
    def work(self) -> Path:
        """The default work folder: outputs/levers/SPEC-NAME (runs, answers, logs)."""
        return paths.LEVERS / self.path.stem

    @property
    def reference(self) -> Lever:
        return self.levers[0]

    def lever(self, name: str) -> Lever:
        return next(lv for lv in self.levers if lv.name == name)

    def settings(self, lever: Lever) -> GenerationSettings:
        if lever.cut_from:  # what stop_on_loop writes with the source's decoding
            return GenerationSettings(
                **{**dataclasses.asdict(self.settings(self.lever(lever.cut_from))), "stop_on_loop": True}
            )
        return GenerationSettings(**{**self.decode, **lever.decode})


# the keys of a spec, each with the type it takes (the levers', sets' and choice's: their dataclasses' fields)
TOP = {"recipe": str, "data": str, "split": str, "n": int, "train": dict, "decode": dict, "levers": list, "sets": list,
       "test": dict, "choose": dict}  # fmt: skip
TEST = {"n": int, "levers": list[str]}


def _typed(path: Path, where: str, kind, value):
    """`value` as `kind` (a type, or a dataclass from a mapping), or one line naming where in the spec it is wrong and
    what it takes; a dataclass's unknown keys are refused, not ignored."""
    from pydantic import TypeAdapter, ValidationError

    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise UserError(path, f"{where}: must be a mapping of keys, not {type(value).__name__}")
        unknown = sorted(map(str, set(value) - {f.name for f in dataclasses.fields(kind)}))
        if unknown:
            raise UserError(path, f"{where}: unknown key(s) {', '.join(unknown)}")
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise UserError(path, f"{where}{'.' + loc if loc else ''}: {first.get('msg')}") from None
    except (ValueError, TypeError, argparse.ArgumentTypeError) as err:  # a dataclass's own check of its values
        raise UserError(path, f"{where}: {err}") from None


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    raw = load_recipe(path)  # a YAML mapping, read with the same one-line errors as recipes
    known = {f.name for f in dataclasses.fields(GenerationSettings)}
    unknown = sorted(map(str, set(raw) - set(TOP)))
    if unknown:
        raise UserError(path, f"not a lever spec: unknown key(s) {', '.join(unknown)}")
    for key in ("recipe", "levers"):
        if raw.get(key) is None:
            raise UserError(path, f"not a lever spec: no {key!r}")
    raw = {k: _typed(path, k, kind, raw[k]) for k, kind in TOP.items() if raw.get(k) is not None}
    test = {k: _typed(path, f"test.{k}", kind, v) for k, kind in TEST.items() if (v := raw.get("test", {}).get(k))}
    unknown = sorted(map(str, set(raw.get("test", {})) - set(TEST)))
    if unknown:
        raise UserError(path, f"test: unknown key(s) {', '.join(unknown)}")
    levers = [_typed(path, f"levers[{i}]", Lever, {"recipe": raw["recipe"], **item}) if isinstance(item, dict)
              else _typed(path, f"levers[{i}]", Lever, item) for i, item in enumerate(raw["levers"])]  # fmt: skip
    spec = Spec(
        path,
        raw["recipe"],
        raw.get("split", "val"),
        raw.get("n", 500),
        raw.get("train") or {},
        raw.get("decode") or {},
        levers,
        test.get("n", 0),
        list(test.get("levers", [])),
        _typed(path, "choose", Choice, raw["choose"]) if raw.get("choose") else None,
        raw.get("data", str(paths.SEED_DATA)),
        [_typed(path, f"sets[{i}]", QuestionSet, item) for i, item in enumerate(raw.get("sets") or [])],
    )
    names = [lv.name for lv in levers]
    if len(set(names)) != len(names) or BASE in names:
        raise UserError(path, f"lever names must be unique and not {BASE!r}")
    if not levers or not levers[0].trains:
        raise UserError(path, "the first lever is the reference and must train a model")

    def training(name):
        return name in names and spec.lever(name).trains

    for lv in levers:
        if lv.trains and not Path(lv.recipe).is_file():
            raise UserError(path, f"lever {lv.name!r}: its recipe {lv.recipe} is not there")
        if lv.model not in (None, BASE) and not training(lv.model):
            raise UserError(path, f"lever {lv.name!r}: model {lv.model!r} is not a lever that trains")
        if lv.prompt is not None and (lv.model != BASE or not training(lv.prompt)):
            raise UserError(path, f"lever {lv.name!r}: prompt: names a lever that trains, for model: base only")
        if lv.epoch is not None and lv.model in (None, BASE):
            raise UserError(path, f"lever {lv.name!r}: epoch: needs model: (a lever that trains)")
        if lv.start is not None and (not lv.trains or not training(lv.start) or lv.start == lv.name):
            raise UserError(path, f"lever {lv.name!r}: start: names another lever that trains")
        if lv.rule not in RULES:
            raise UserError(path, f"lever {lv.name!r}: rule must be one of {RULES}")
        if lv.cut_from is not None:
            source = spec.lever(lv.cut_from) if lv.cut_from in names else None
            if source is None or source.cut_from or lv.model or lv.decode or spec.settings(source).stop_on_loop:
                raise UserError(path, f"lever {lv.name!r}: cut_from: names a lever answered without stop_on_loop")
        if lv.compare_to is not None and lv.compare_to not in names:
            raise UserError(path, f"lever {lv.name!r}: compare_to {lv.compare_to!r} is not a lever")
        if set(lv.decode) - known:
            raise UserError(path, f"lever {lv.name!r}: unknown decode key(s) {sorted(set(lv.decode) - known)}")
        if not lv.cut_from:  # the decoding's values, each of the type its option takes
            _typed(path, f"lever {lv.name!r}: decode", GenerationSettings, {**spec.decode, **lv.decode})
        try:
            spec.settings(lv)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
            raise UserError(path, f"lever {lv.name!r}: decode: {err}") from None
    for name in spec.test_levers:
        if name not in names:
            raise UserError(path, f"test lever {name!r} is not in levers")
        if spec.lever(name).cut_from and spec.lever(name).cut_from not in spec.test_levers:
            raise UserError(path, f"test lever {name!r}: its cut_from lever answers the test split too")
    set_names = [spec.split, "test", *(q.name for q in spec.sets)]
    if len(set(set_names)) != len(set_names):
        raise UserError(path, f"question set names must differ from each other, {spec.split!r} and 'test'")
    for qs in spec.sets:
        for name in qs.levers or []:
            if name not in names:
                raise UserError(path, f"set {qs.name!r}: lever {name!r} is not in levers")
    if spec.choose:
        for name in [spec.choose.greedy, *spec.choose.candidates]:
            if name not in names:
                raise UserError(path, f"choose: {name!r} is not a lever")
    return spec


def seed_text_folders(spec: Spec) -> list[Path]:
    """The prepared folders whose seed text (`*_text.jsonl`, medqa.data.write_seed_text) a lever trains on and that
    is not written yet."""
    folders = []
    for lv in spec.levers:
        for entry in {**spec.train, **lv.set}.get("datasets") or []:
            path = Path(str(entry["path"]))
            if path.name.endswith("_text.jsonl") and not path.is_file() and (path.parent / "train.jsonl").is_file():
                folders.append(path.parent)
    return list(dict.fromkeys(folders))

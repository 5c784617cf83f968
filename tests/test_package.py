"""The packages run from an installed wheel as well as from the checkout: nothing in medqa/ or medqa_lab/ reaches for
the repository around it, every command the library runs (a lever plan's jobs, scale-check's runs) is a module of
the wheel, and the product (medqa) never imports the lab (medqa_lab)."""

import ast
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ENV, REPO

import medqa
import medqa_lab


def test_every_module_imports_from_an_installed_wheel(tmp_path):
    wheels, target, src = tmp_path / "wheels", tmp_path / "site", tmp_path / "src"
    for package in ("medqa", "medqa_lab"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src)  # built from a copy: the checkout gets no build/ folder
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, src]
    subprocess.run(build, check=True, capture_output=True)
    [wheel] = wheels.glob("medqa-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, wheel]
    subprocess.run(install, check=True, capture_output=True)
    modules = sorted(
        m.name
        for package in (medqa, medqa_lab)
        for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    )
    code = f"import importlib, medqa\nfor name in {modules!r}: importlib.import_module(name)\nprint(medqa.__file__)"
    env = {**ENV, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith(str(target))  # the wheel's copy, not the checkout's
    assert len(modules) >= 25 and {"medqa.prompts", "medqa.cli.finetune", "medqa_lab.bench.generation"} <= set(modules)

    # every command the library would start: the jobs of a lever plan and scale-check's run, each started from the
    # wheel, away from the checkout, as far as its --help
    from medqa.paths import FLAGSHIP
    from medqa_lab.bench.scaling import finetune_command
    from medqa_lab.levers import load_spec, plan

    commands = []
    for name in ("round-4.yml", "round-5.yml"):  # between them, every kind of job
        spec = load_spec(REPO / "results" / "smollm2-135m" / "levers" / name)
        commands += [job.argv for job in plan(spec, spec.work, Path(spec.data))]
    commands.append(finetune_command(FLAGSHIP, Path("m"), Path("d"), Path("o"), Path("w"), 2, 1, []))
    modules_run = {argv[argv.index("-m") + 1] for argv in commands}
    assert all(argv[0] == sys.executable and argv[1] == "-m" for argv in commands)  # no script of the checkout
    assert modules_run == {f"medqa.cli.{name}" for name in ("finetune", "merge", "pairs", "generate", "cut_loops")}
    for module in sorted(modules_run):
        started = subprocess.run(
            [sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert started.returncode == 0 and "usage:" in started.stdout, (module, started.stderr[-1000:])


def test_the_product_never_imports_the_lab():
    """medqa is what a run needs; medqa_lab (the lever runner, make bench) stands above it and imports it."""
    offenders = []
    for path in sorted((REPO / "medqa").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "medqa_lab"]
    assert offenders == []
    lab = [p for p in (REPO / "medqa_lab").rglob("*.py") if "from medqa." in p.read_text()]
    assert lab  # the lab builds on the product

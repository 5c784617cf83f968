"""The package runs from an installed wheel as well as from the checkout: nothing in medqa/ reaches for the
repository around it."""

import pkgutil
import shutil
import subprocess
import sys

from conftest import ENV, REPO

import medqa


def test_every_module_imports_from_an_installed_wheel(tmp_path):
    wheels, target, src = tmp_path / "wheels", tmp_path / "site", tmp_path / "src"
    shutil.copytree(REPO / "medqa", src / "medqa", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src)  # built from a copy: the checkout gets no build/ folder
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, src]
    subprocess.run(build, check=True, capture_output=True)
    [wheel] = wheels.glob("medqa-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, wheel]
    subprocess.run(install, check=True, capture_output=True)
    modules = sorted(m.name for m in pkgutil.iter_modules(medqa.__path__))
    code = (
        "import importlib, medqa\n"
        f"for name in {modules!r}: importlib.import_module('medqa.' + name)\n"
        "print(medqa.__file__)"
    )
    env = {**ENV, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith(str(target))  # the wheel's copy, not the checkout's
    assert len(modules) >= 15 and {"prompts", "inference", "recipe"} <= set(modules)

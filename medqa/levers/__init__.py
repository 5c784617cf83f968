"""Levers: train and evaluate many variants of a recipe side by side, one change at a time (a spec, its jobs, a
runner that spreads them over the GPUs, the tables)."""

from medqa.levers.plan import Job, plan, prediction_file, run_dir
from medqa.levers.runner import run_jobs
from medqa.levers.spec import BASE, Lever, Spec, load_spec
from medqa.levers.table import choose_decoding, lever_table, table_markdown

__all__ = [
    "BASE",
    "Job",
    "Lever",
    "Spec",
    "choose_decoding",
    "lever_table",
    "load_spec",
    "plan",
    "prediction_file",
    "run_dir",
    "run_jobs",
    "table_markdown",
]

"""Levers: train and evaluate many variants of a recipe side by side, one change at a time (a spec, its jobs, a
runner that spreads them over the GPUs, the tables)."""

from medqa.levers.plan import Job, plan
from medqa.levers.runner import run_jobs
from medqa.levers.spec import load_spec
from medqa.levers.table import lever_table, table_markdown

__all__ = ["Job", "lever_table", "load_spec", "plan", "run_jobs", "table_markdown"]

"""Levers: train and evaluate many variants of a recipe side by side, one change at a time (a spec, its jobs, a
runner that spreads them over the GPUs, the tables)."""

from medqa_lab.levers.plan import Job, plan
from medqa_lab.levers.runner import run_jobs
from medqa_lab.levers.spec import load_spec
from medqa_lab.levers.table import lever_table, table_markdown

__all__ = ["Job", "lever_table", "load_spec", "plan", "run_jobs", "table_markdown"]

"""The one writer of benchmark reports: bench/<date>-<gpu>[-suffix].json and .md, a section each (training,
generation, benchmark, scaling); writing one section keeps the file's others."""

from __future__ import annotations

import json
from pathlib import Path

from medqa.fsutil import atomic_write_text

HEADINGS = {
    "training": "Training",
    "generation": "Generation",
    "benchmark": "Benchmarks (lm-evaluation-harness)",
    "scaling": "Several GPUs and machines",
    "preference": "The preference stage (make dpo)",
}


def write_section(out: Path, gpu: str, section: str, data: dict, table: str, suffix: str = "") -> Path:
    """Put `data` under `section` in out/<date>-<gpu><suffix>.json and `table` under its heading in the .md beside
    it; the other sections stay as they were. Returns the path without suffix."""
    stem = out / (report_stem(gpu) + suffix)
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    report = json.loads(json_path.read_text()) if json_path.is_file() else {}
    report[section] = data
    tables = read_tables(md_path) if md_path.is_file() else {}
    tables[HEADINGS[section]] = table.strip()
    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    order = [h for h in HEADINGS.values() if h in tables]
    atomic_write_text(md_path, "\n\n".join(f"## {h}\n\n{tables[h]}" for h in order) + "\n")
    return stem


def read_tables(md: Path) -> dict[str, str]:
    """The .md's sections by heading (a report from before sections: its first table is the training one)."""
    text = md.read_text()
    if not text.startswith("## "):
        text = "## Training\n\n" + text
    parts = {}
    for chunk in text.split("\n## "):
        heading, _, body = chunk.removeprefix("## ").partition("\n")
        parts[heading.split(" (")[0].strip()] = body.strip()
    return parts


def sections(report: dict) -> dict:
    """A report's sections, whether written by write_section or before it (training figures at the top level)."""
    return report if "training" in report or "runs" not in report else {**report, "training": report}


def report_stem(gpu: str, date: str | None = None) -> str:
    """results/bench/<date>-<gpu>: the file name of a benchmark report, e.g. 2026-11-27-nvidia-h200."""
    import datetime
    import re

    date = date or datetime.date.today().isoformat()
    return f"{date}-{re.sub(r'[^A-Za-z0-9]+', '-', gpu).strip('-').lower()}"

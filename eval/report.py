"""A run's evaluation report: a table per set, plots, answers side by side (make eval).

The command is medqa/cli/report.py (`--help` for its options).
"""

from medqa.cli.report import main

if __name__ == "__main__":
    main()

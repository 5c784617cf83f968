"""Levers: variants of a recipe trained and answered side by side (make levers).

The command is medqa_lab/cli/levers.py (`--help` for its options).
"""

from medqa_lab.cli.levers import main

if __name__ == "__main__":
    main()

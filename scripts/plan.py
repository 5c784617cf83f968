"""Check a recipe and its data before any GPU time, and say what the run will be (make plan).

The command is medqa/cli/plan.py (`--help` for its options).
"""

from medqa.cli.plan import main

if __name__ == "__main__":
    main()

"""Base against tuned on held-out questions and people's questions, scored, with a report (make eval).

The command is medqa/cli/evaluate.py (`--help` for its options).
"""

from medqa.cli.evaluate import main

if __name__ == "__main__":
    main()

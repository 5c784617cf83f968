"""Score answers against their references, with paired differences (make eval).

The command is medqa/cli/score.py (`--help` for its options).
"""

from medqa.cli.score import main

if __name__ == "__main__":
    main()

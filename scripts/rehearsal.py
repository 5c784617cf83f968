"""A rehearsal set: the base model's own faithful answers as training rows.

The command is medqa/cli/rehearsal.py (`--help` for its options).
"""

from medqa.cli.rehearsal import main

if __name__ == "__main__":
    main()

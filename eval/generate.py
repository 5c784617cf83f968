"""Answers to held-out questions from a run's base model or its fine-tuned model (make eval).

The command is medqa/cli/generate.py (`--help` for its options); the library runs the same module as
`python -m medqa.cli.generate`.
"""

from medqa.cli.generate import main

if __name__ == "__main__":
    main()

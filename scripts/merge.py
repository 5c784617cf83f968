"""A run's adapter merged into a standalone model with its tokenizer, recipe and card (make merge).

The command is medqa/cli/merge.py (`--help` for its options); the library runs the same module as
`python -m medqa.cli.merge`.
"""

from medqa.cli.merge import main

if __name__ == "__main__":
    main()

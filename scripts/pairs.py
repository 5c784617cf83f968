"""Preference pairs from a finished run, for recipes/smollm2-135m/dpo.yml (make dpo).

The command is medqa/cli/pairs.py (`--help` for its options); the library runs the same module as
`python -m medqa.cli.pairs`.
"""

from medqa.cli.pairs import main

if __name__ == "__main__":
    main()

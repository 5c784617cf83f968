"""The preference stage after make finetune: pairs from the run's own answers, then DPO (make dpo).

The command is medqa/cli/dpo.py (`--help` for its options); the library runs the same module as
`python -m medqa.cli.dpo`.
"""

from medqa.cli.dpo import main

if __name__ == "__main__":
    main()

"""Fine-tune with Axolotl: check the recipe, then accelerate launch -m axolotl.cli.train (make finetune).

The command is medqa/cli/finetune.py (`--help` for its options); the library runs the same module as
`python -m medqa.cli.finetune`.
"""

from medqa.cli.finetune import main

if __name__ == "__main__":
    main()

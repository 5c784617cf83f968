"""A prepared folder's rows as the seed notebook's text (plain Axolotl's rows).

The command is medqa/cli/export_seed_text.py (`--help` for its options).
"""

from medqa.cli.export_seed_text import main

if __name__ == "__main__":
    main()

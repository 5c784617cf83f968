"""Prepare every source the recipes read (make data).

The command is medqa/cli/data.py (`--help` for its options).
"""

from medqa.cli.data import main

if __name__ == "__main__":
    main()

"""Turn a question/answer dataset into the recipes' format (make data).

The command is medqa/cli/prepare_data.py (`--help` for its options).
"""

from medqa.cli.prepare_data import main

if __name__ == "__main__":
    main()

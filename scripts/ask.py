"""Ask a fine-tuned run a question of your own (make ask).

The command is medqa/cli/ask.py (`--help` for its options).
"""

from medqa.cli.ask import main

if __name__ == "__main__":
    main()

"""Base and tuned answers side by side (make demo).

The command is medqa/cli/demo.py (`--help` for its options).
"""

from medqa.cli.demo import main

if __name__ == "__main__":
    main()

"""Answers cut where they start to loop: what stop_on_loop would have written.

The command is medqa/cli/cut_loops.py (`--help` for its options); the library runs the same module as
`python -m medqa.cli.cut_loops`.
"""

from medqa.cli.cut_loops import main

if __name__ == "__main__":
    main()

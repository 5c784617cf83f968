"""Training speed: the seed's notebook, Axolotl's example and the 7B recipe (make bench).

The command is medqa_lab/cli/bench.py (`--help` for its options).
"""

from medqa_lab.cli.bench import main

if __name__ == "__main__":
    main()

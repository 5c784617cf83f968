"""make eval's generation at the 7B shape (make bench-generation).

The command is medqa_lab/cli/bench_generation.py (`--help` for its options).
"""

from medqa_lab.cli.bench_generation import main

if __name__ == "__main__":
    main()

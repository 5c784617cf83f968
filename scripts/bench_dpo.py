"""make dpo at the 7B shape (make bench-dpo).

The command is medqa_lab/cli/bench_dpo.py (`--help` for its options).
"""

from medqa_lab.cli.bench_dpo import main

if __name__ == "__main__":
    main()

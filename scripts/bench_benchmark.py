"""make benchmark's time at the 7B shape (make bench-benchmark).

The command is medqa_lab/cli/bench_benchmark.py (`--help` for its options).
"""

from medqa_lab.cli.bench_benchmark import main

if __name__ == "__main__":
    main()

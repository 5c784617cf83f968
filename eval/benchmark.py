"""lm-evaluation-harness on a run's base and tuned models (make benchmark).

The command is medqa/cli/benchmark.py (`--help` for its options).
"""

from medqa.cli.benchmark import main

if __name__ == "__main__":
    main()

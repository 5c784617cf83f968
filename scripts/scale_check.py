"""The 7B recipe on one GPU, DDP and ZeRO-2, with resumes (make scale-check).

The command is medqa_lab/cli/scale_check.py (`--help` for its options).
"""

from medqa_lab.cli.scale_check import main

if __name__ == "__main__":
    main()

"""Upload a run's adapter or merged model with its model card (make push).

The command is medqa/cli/push.py (`--help` for its options).
"""

from medqa.cli.push import main

if __name__ == "__main__":
    main()

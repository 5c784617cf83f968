"""Upload a run's adapter, or its merged model, to the Hugging Face Hub with a model card.

    python scripts/push.py outputs/<run> --repo user/name [--merged [DIR]] [--gguf]

The card names the base model (the embedded one: SmolLM2-135M-Instruct rebuilt from a Q4_1 GGUF), the data
and its licence (MedQuAD, CC BY 4.0), the recipe, the run's `make eval` results and that the answers are
not medical advice. Needs the Hub: HF_HUB_OFFLINE=0 and `hf auth login`. --repo defaults to the recipe's
hub_model_id (Axolotl's key, which also pushes checkpoints during training).
"""

import argparse
from pathlib import Path

from medqa.cli import command
from medqa.errors import UserError
from medqa.publish import push
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("--repo", default=None, help="user/name on the Hub (default: the recipe's hub_model_id)")
    parser.add_argument(
        "--merged", nargs="?", const="", default=None, help="upload the merged model (default RUN/merged)"
    )
    parser.add_argument("--gguf", action="store_true", help="also upload RUN/gguf/ (make gguf's) under gguf/")
    args = parser.parse_args()
    run = Run.open(args.run)
    repo = args.repo or run.recipe.get("hub_model_id")
    if not repo:
        raise UserError(args.run, "no --repo given and the recipe has no hub_model_id")
    merged = None if args.merged is None else Path(args.merged or run.path / "merged")
    print(f"uploaded to {push(run, repo, merged, gguf=args.gguf)}")


if __name__ == "__main__":
    main()

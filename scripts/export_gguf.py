"""The merged model as a GGUF for llama.cpp, Ollama and LM Studio (make gguf).

The command is medqa/cli/gguf.py (`--help` for its options).
"""

from medqa.cli.gguf import main

if __name__ == "__main__":
    main()

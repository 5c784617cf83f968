"""Models with random weights for make bench and make scale-check: speed and memory do not depend on the values.

The Llama-2 tokenizer cannot be had offline, so the embedded SmolLM2 tokenizer is saved with the model and
the vocabulary is sized to it (49,152; Llama-2's is 32,000).
"""

from pathlib import Path

from medqa import paths
from medqa.errors import UserError

TOKENIZER = paths.MODEL  # the embedded model `make setup` builds
BENCH_MODEL = Path("/tmp/medqa-llama2-7b-random")  # make bench's model: written where a GPU machine has room
SHAPES = {
    "llama2-7b": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32
    ),
    "smollm2-135m": dict(  # the embedded model's shape (make bench-benchmark's small row)
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        tie_word_embeddings=True,
    ),
    "tiny": dict(  # the test suite's
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    ),
}


def build_model(shape: str, tokenizer: Path = TOKENIZER):
    """A model of this shape with random weights (bf16 on the GPU, fp32 on a CPU) and the embedded tokenizer, the
    vocabulary sized to it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{"max_position_embeddings": 4096, "rms_norm_eps": 1e-5, **SHAPES[shape]},
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    return model, tokenizer


def make_model(shape: str, out: Path, tokenizer: Path = TOKENIZER) -> None:
    """build_model's model, saved with its tokenizer."""
    import torch

    model, tokenizer = build_model(shape, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    if torch.cuda.is_available():  # the bench's processes measure the card: give this process's share back
        torch.cuda.empty_cache()


def add_model_arguments(parser) -> None:
    """--model and --make-model, as make bench's commands take them."""
    parser.add_argument("--model", type=Path, default=BENCH_MODEL, help=f"model folder (default {BENCH_MODEL})")
    parser.add_argument(
        "--make-model",
        choices=[*sorted(SHAPES), "none"],
        default="llama2-7b",
        help="the shape of random model to make at --model where none is there (none: use --model as it is)",
    )


def model_from(args) -> str | None:
    """The model the options name, made (random weights) where it is not there yet; the shape made, or None."""
    shape = None if args.make_model == "none" else args.make_model
    if shape and not (args.model / "config.json").is_file():
        make_model(shape, args.model)
    if not (args.model / "config.json").is_file():
        raise UserError(args.model, "no model here (use --make-model llama2-7b)")
    return shape

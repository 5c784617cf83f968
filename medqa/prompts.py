"""Prompts, defined once: the chat template that a run's tokenizer carries.

A recipe names its template the Axolotl way (`chat_template: jinja` and `chat_template_jinja:
recipes/templates/<name>.jinja`, or `chat_template: tokenizer_default` for the model's own). Axolotl sets it
on the tokenizer before the data is tokenised and saves it with the run, so training, `make eval`, `make
ask` and any tool that calls `apply_chat_template` on the run's tokenizer build the same prompt: the
question as the user turn, with `add_generation_prompt=True`. A training example is that conversation with
the answer as the assistant turn, up to and including the end-of-turn token; the labels cover the answer.
"""

from __future__ import annotations

from functools import lru_cache

from medqa import paths
from medqa.errors import UserError

IGNORE_INDEX = -100
# the seed notebook's text, `<s>` and `</s>` as plain text (plain Axolotl's rows and the notebook's bench)
SEED_TEXT = paths.TEMPLATES / "seed-text.jinja"
_ANSWER = "\u2063ANSWER\u2063"  # stands for the answer while reading where the template puts it


def messages(question: str, answer: str | None = None) -> list[dict]:
    turns = [{"role": "user", "content": question}]
    return turns + ([{"role": "assistant", "content": answer}] if answer is not None else [])


def prompt_text(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template(messages(question), tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer, question: str) -> list[int]:
    """What inference feeds the model; the template writes any special tokens itself."""
    return tokenizer(prompt_text(tokenizer, question), add_special_tokens=False)["input_ids"]


@lru_cache(maxsize=8)
def _frame(template: str, tokenizer) -> tuple[str, str]:
    """The text the template writes between the prompt and the answer, and after the answer up to and
    including the end-of-turn token (what follows it is never generated)."""
    prompt = prompt_text(tokenizer, "Q")
    full = tokenizer.apply_chat_template(messages("Q", _ANSWER), tokenize=False)
    if not full.startswith(prompt) or _ANSWER not in full:
        raise ValueError("the chat template does not render the answer after the generation prompt")
    before, after = full[len(prompt) :].split(_ANSWER, 1)
    eos = tokenizer.eos_token or ""
    if eos and eos in after:
        after = after[: after.index(eos) + len(eos)]
    return before, after


def answer_frame(tokenizer) -> tuple[str, str]:
    if not tokenizer.chat_template:
        raise ValueError("the tokenizer has no chat template (set chat_template_jinja in the recipe)")
    return _frame(tokenizer.chat_template, tokenizer)


def stop_text(tokenizer) -> str | None:
    """Where an answer ends when its end is plain text before the end-of-turn token (` </s>` in the
    seed's text for SmolLM2, which has no such token); None where the end-of-turn token alone ends it."""
    end = answer_frame(tokenizer)[1].replace(tokenizer.eos_token or "\0", "").strip()
    return end or None


def full_text(tokenizer, question: str, answer: str) -> str:
    before, after = answer_frame(tokenizer)
    return prompt_text(tokenizer, question) + before + answer + after


def encode_example(
    tokenizer, question: str, answer: str, max_len: int | None = None, train_on_prompt: bool = False
) -> dict[str, list[int]]:
    """input_ids, labels (the prompt masked unless train_on_prompt) and attention_mask; cut at max_len."""
    prompt = encode_prompt(tokenizer, question)
    text = full_text(tokenizer, question, answer)
    full = tokenizer(text, add_special_tokens=False)["input_ids"]
    if full[: len(prompt)] != prompt:  # a token merged across the boundary: keep the prompt exact
        full = prompt + tokenizer(text[len(prompt_text(tokenizer, question)) :], add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None and full[-1] != tokenizer.eos_token_id:
        full.append(tokenizer.eos_token_id)  # a template that does not end the turn itself
    if max_len is not None:
        full = full[:max_len]
    labels = list(full) if train_on_prompt else [IGNORE_INDEX] * len(prompt) + full[len(prompt) :]
    return {"input_ids": full, "labels": labels[: len(full)], "attention_mask": [1] * len(full)}


def render(template: str, question: str, answer: str, **special_tokens: str) -> str:
    """A conversation rendered by a template without a tokenizer (e.g. the seed's text rows, no end token)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders
    return env.from_string(template).render(messages=messages(question, answer), **special_tokens)


def recipe_tokenizer(cfg: dict, where="recipe"):
    """The base model's tokenizer with the recipe's chat template set, as Axolotl sets it before training."""
    from axolotl.utils.chat_templates import get_chat_template_from_config
    from axolotl.utils.dict import DictDefault
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(cfg.get("tokenizer_config") or cfg["base_model"]))
    try:
        if cfg.get("chat_template"):
            tokenizer.chat_template = get_chat_template_from_config(DictDefault(cfg), tokenizer=tokenizer)
        answer_frame(tokenizer)
    except ValueError as err:
        raise UserError(where, f"chat template: {err}") from None
    return tokenizer

"""Prompt formats, defined once: the same code builds training examples and inference prompts.

A format turns a question into prompt token ids, and a question/answer pair into a training example
whose labels cover the answer only (prompt tokens are masked with -100). Inference encodes the
question with `encode_prompt`, which is, token for token, the start of every training example.
"""

from __future__ import annotations

IGNORE_INDEX = -100


class PromptFormat:
    name: str
    system: str
    add_special_tokens = True  # let the tokenizer add BOS (False where a chat template writes it)
    append_eos = True
    stop_text: str | None = None  # where an answer ends when the end is plain text, not a special token

    def prompt_text(self, tokenizer, question: str) -> str:
        raise NotImplementedError

    def full_text(self, tokenizer, question: str, answer: str) -> str:
        raise NotImplementedError

    def encode_prompt(self, tokenizer, question: str) -> list[int]:
        return tokenizer(self.prompt_text(tokenizer, question), add_special_tokens=self.add_special_tokens)["input_ids"]

    def encode_example(
        self, tokenizer, question: str, answer: str, max_len: int | None = None, train_on_prompt: bool = False
    ) -> dict[str, list[int]]:
        prompt = self.encode_prompt(tokenizer, question)
        full = tokenizer(self.full_text(tokenizer, question, answer), add_special_tokens=self.add_special_tokens)[
            "input_ids"
        ]
        if full[: len(prompt)] != prompt:  # a token merged across the boundary: keep the prompt exact
            full = prompt + tokenizer(self.answer_suffix(answer), add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None and full[-1] != tokenizer.eos_token_id and self.append_eos:
            full.append(tokenizer.eos_token_id)
        if max_len is not None:
            full = full[:max_len]
        labels = list(full) if train_on_prompt else [IGNORE_INDEX] * len(prompt) + full[len(prompt) :]
        return {"input_ids": full, "labels": labels[: len(full)], "attention_mask": [1] * len(full)}

    def answer_suffix(self, answer: str) -> str:
        return " " + answer


class Llama2Chat(PromptFormat):
    """The seed notebook's text: `<s>[INST] <<SYS>> Answer the Question <</SYS>> {q} [/INST] {a} </s>`.

    `<s>` and `</s>` are the tokenizer's BOS/EOS tokens, added as ids rather than as text.
    """

    name = "llama2_chat"
    system = "Answer the Question"

    def prompt_text(self, tokenizer, question):
        return f"[INST] <<SYS>> {self.system} <</SYS>> {question} [/INST]"

    def full_text(self, tokenizer, question, answer):
        return f"{self.prompt_text(tokenizer, question)} {answer}"


class ModelChat(PromptFormat):
    """The model's own chat template (system + user turns, then the assistant's answer)."""

    name = "model_chat"
    system = "You are a medical assistant. Answer the question accurately and concisely."
    add_special_tokens = False  # the template writes any special tokens itself

    def _messages(self, question):
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": question}]

    def prompt_text(self, tokenizer, question):
        return tokenizer.apply_chat_template(self._messages(question), tokenize=False, add_generation_prompt=True)

    def full_text(self, tokenizer, question, answer):
        messages = self._messages(question) + [{"role": "assistant", "content": answer}]
        # the turn ends at the end-of-turn token: what follows it is never generated
        return tokenizer.apply_chat_template(messages, tokenize=False).rstrip()

    def answer_suffix(self, answer):
        return answer


class ModelChatNoSystem(ModelChat):
    """The model's own chat template given the user turn alone (a template may add its own default system turn)."""

    name = "model_chat_nosys"
    system = ""


class SeedText(Llama2Chat):
    """The seed notebook's rows as plain text, `<s>` and `</s>` included literally: what Axolotl's
    `type: completion` trains on when given the seed's `text` column (the baseline recipe). For a
    tokenizer without those tokens (SmolLM2), `</s>` is text the model learns to write: the answer ends there."""

    name = "seed_text"
    stop_text = "</s>"

    def prompt_text(self, tokenizer, question):
        return f"<s>{super().prompt_text(tokenizer, question)}"

    def full_text(self, tokenizer, question, answer):
        return f"{super().full_text(tokenizer, question, answer)} </s>"


FORMATS: dict[str, PromptFormat] = {f.name: f for f in (Llama2Chat(), ModelChat(), ModelChatNoSystem(), SeedText())}


def get_format(name: str) -> PromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r} (known: {', '.join(FORMATS)})") from None

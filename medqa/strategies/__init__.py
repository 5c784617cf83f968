"""Axolotl prompt strategies: `type: medqa.strategies.<format>` in a recipe's datasets.

Axolotl imports the module named by `type` and calls its `load(tokenizer, cfg)`; each module here
binds one format from `medqa.prompts`, so training text and inference prompts share one definition.
"""

from axolotl.prompt_tokenizers import PromptTokenizingStrategy

from medqa.prompts import get_format


class QAStrategy(PromptTokenizingStrategy):
    """Tokenise `{"question", "answer"}` rows with a prompt format; the loss covers the answer only."""

    def __init__(self, fmt, tokenizer, train_on_inputs, sequence_len):
        super().__init__(None, tokenizer, train_on_inputs, sequence_len)
        self.fmt = fmt

    def tokenize_prompt(self, prompt):
        return self.fmt.encode_example(
            self.tokenizer,
            prompt["question"],
            prompt["answer"],
            max_len=self.sequence_len,
            train_on_prompt=self.train_on_inputs,
        )


def loader(format_name):
    def load(tokenizer, cfg):
        return QAStrategy(get_format(format_name), tokenizer, bool(cfg.train_on_inputs), cfg.sequence_len)

    return load

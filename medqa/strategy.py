"""The Axolotl prompt strategy of the recipes: `type: medqa.strategy` in a recipe's datasets.

Rows `{"question", "answer"}` become the conversation of the recipe's chat template (which Axolotl has set
on the tokenizer before this runs), with the loss on the answer only (medqa.prompts.encode_example).
"""

from axolotl.prompt_tokenizers import PromptTokenizingStrategy

from medqa.prompts import answer_frame, encode_example


class QAStrategy(PromptTokenizingStrategy):
    def __init__(self, tokenizer, train_on_inputs, sequence_len):
        super().__init__(None, tokenizer, train_on_inputs, sequence_len)
        answer_frame(tokenizer)  # fails here, before any row, if the tokenizer has no usable template

    def tokenize_prompt(self, prompt):
        return encode_example(
            self.tokenizer,
            prompt["question"],
            prompt["answer"],
            max_len=self.sequence_len,
            train_on_prompt=self.train_on_inputs,
        )


def load(tokenizer, cfg):
    return QAStrategy(tokenizer, bool(cfg.train_on_inputs), cfg.sequence_len)

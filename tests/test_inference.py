"""The model scored is the model trained: the adapter merged into the dequantised NF4 weights gives the
outputs of the 4-bit layers with the adapter on top (the training forward), and not those of a merge into the
unquantised base. Greedy generation stops at the end-of-turn token or the format's stop text."""

import pytest
import torch

from medqa.inference import GenerationSettings, generate_answers, load_model
from medqa.prompts import get_format


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, tiny_model):
    """A LoRA adapter with non-zero weights on every linear layer of the tiny model (as a QLoRA run saves it)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    path = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(path)
    return path


def logits(model, tokenizer):
    ids = torch.tensor([tokenizer("What are the symptoms of asthma? Wheezing and coughing.")["input_ids"]])
    with torch.no_grad():
        return model(ids).logits


def test_merged_weights_are_the_trained_model(tiny_model, adapter):
    merged, tok = load_model(str(tiny_model), adapter, "merged")
    as_trained, _ = load_model(str(tiny_model), adapter, "4bit")
    base, _ = load_model(str(tiny_model))
    from peft import PeftModel

    unquantised = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    a, b, c = logits(merged, tok), logits(as_trained, tok), logits(unquantised, tok)
    gap_trained = (a - b).abs().max().item()
    gap_unquantised = (c - b).abs().max().item()
    assert gap_trained < 0.1 * gap_unquantised, (gap_trained, gap_unquantised)
    assert not any("lora" in n for n, _ in merged.named_parameters())  # plain tensors: fast generation


def test_generation_records_length_and_cut_off(tiny_model, adapter):
    model, tok = load_model(str(tiny_model), adapter)
    answers = generate_answers(
        model, tok, get_format("model_chat"), ["What is asthma?", "What is flu?"], GenerationSettings(4), False
    )
    for a in answers:  # a random model rarely ends its turn within 4 tokens
        assert a.new_tokens <= 4 and a.hit_max_new_tokens == (a.new_tokens == 4)


def test_stop_text_ends_an_answer(tiny_model, adapter, monkeypatch):
    """The seed-text format ends at the literal `</s>` the model learned to write."""
    model, tok = load_model(str(tiny_model), adapter)
    fmt = get_format("seed_text")
    first = generate_answers(model, tok, fmt, ["What is asthma?"], GenerationSettings(6), False)[0]
    words = first.text.split()
    assert words, "the tiny model wrote nothing"
    monkeypatch.setattr(type(fmt), "stop_text", words[min(1, len(words) - 1)])
    cut = generate_answers(model, tok, fmt, ["What is asthma?"], GenerationSettings(6), False)[0]
    assert fmt.stop_text not in cut.text and not cut.hit_max_new_tokens
    assert first.text.startswith(cut.text)

"""The model scored is the model trained: the adapter merged into the dequantised NF4 weights gives the
outputs of the 4-bit layers with the adapter on top (the training forward), and not those of a merge into the
unquantised base. Greedy generation stops at the end-of-turn token or the format's stop text."""

import pytest
import torch

from medqa.decoding import GenerationSettings
from medqa.generation import generate_answers
from medqa.inference import load_model


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
    answers = generate_answers(model, tok, ["What is asthma?", "What is flu?"], GenerationSettings(4), False)
    for a in answers:  # a random model rarely ends its turn within 4 tokens
        assert a.new_tokens <= 4 and a.hit_max_new_tokens == (a.new_tokens == 4)


def template_ending_with(end: str) -> str:
    return (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Q: ' + m['content'] + ' A:' }}"
        "{% else %}{{ ' ' + m['content'] + ' " + end + "' + eos_token }}{% endif %}{% endfor %}"
    )


def test_stop_text_ends_an_answer(tiny_model, adapter):
    """A template whose answers end in plain text (the seed's ` </s>` for SmolLM2) stops there."""
    model, tok = load_model(str(tiny_model), adapter)
    tok.chat_template = template_ending_with("")
    settings = GenerationSettings(6, no_repeat_ngram_size=0)
    first = generate_answers(model, tok, ["What is asthma?"], settings, False)[0]
    words = first.text.split()
    assert words, "the tiny model wrote nothing"
    stop = words[min(1, len(words) - 1)]
    tok.chat_template = template_ending_with(stop)
    cut = generate_answers(model, tok, ["What is asthma?"], settings, False)[0]
    assert stop not in cut.text and not cut.hit_max_new_tokens
    assert first.text.startswith(cut.text)


def test_static_cache_gives_the_answers_of_the_dynamic_one(tiny_model, adapter):
    """The GPU default (a static cache: every batch padded to one size and prompt length, the decoding step
    compiled) answers as the growing cache does; the padding rows added to the last batch are dropped."""
    model, tok = load_model(str(tiny_model), adapter)
    questions = ["What is asthma?", "What are the symptoms of the common cold in children?", "Flu?"]
    answers = {
        cache: generate_answers(model, tok, questions, GenerationSettings(8, batch_size=2, cache=cache), False)
        for cache in ("static", "dynamic")
    }
    assert [a.text for a in answers["static"]] == [a.text for a in answers["dynamic"]]
    assert len(answers["static"]) == 3 and any(a.text for a in answers["static"])
    assert GenerationSettings().resolved_cache("cpu") == "dynamic"
    assert GenerationSettings().resolved_cache("cuda") == "static"
    with pytest.raises(ValueError, match="cache"):
        GenerationSettings(cache="paged").resolved_cache("cpu")


def test_answer_scope_leaves_the_question_free_and_still_blocks_repeats():
    """ngram_scope "answer": transformers' no-repeat-n-gram rule over the answer's tokens only, so an answer may
    name the question's subject; "all" (transformers' own) counts the prompt, so it cannot."""
    from transformers import NoRepeatNGramLogitsProcessor

    from medqa.generation import _answer_no_repeat_ngram

    answer_scope = _answer_no_repeat_ngram()(2, prompt_length=3)
    scores = torch.zeros(1, 10)
    named = torch.tensor([[1, 2, 9, 1]])  # prompt 1 2 9, answer 1: may the answer go on with 2?
    assert torch.isinf(NoRepeatNGramLogitsProcessor(2)(named, scores.clone())[0, 2])
    assert not torch.isinf(answer_scope(named, scores.clone())).any()
    looping = torch.tensor([[1, 2, 9, 4, 5, 4]])  # answer 4 5 4: 5 would repeat the bigram (4, 5)
    banned = torch.isinf(answer_scope(looping, scores.clone()))[0]
    assert banned[5] and banned.sum() == 1


def test_every_decoding_option_comes_from_generation_settings():
    """eval/generate.py's options, the lever runner's argument lists and the settings are one thing: a field added
    to GenerationSettings reaches them all."""
    import argparse
    import dataclasses

    from medqa.decoding import add_arguments, from_arguments, to_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_arguments(parser.parse_args([])) == GenerationSettings()
    custom = GenerationSettings(
        max_new_tokens=512,
        repetition_penalty=1.1,
        no_repeat_ngram_size=6,
        ngram_scope="all",
        temperature=0.7,
        stop_on_loop=False,
        batch_size=64,
        cache="dynamic",
        compile="cudagraphs",
    )
    assert from_arguments(parser.parse_args(to_arguments(custom))) == custom
    options = {a.dest for a in parser._actions if a.dest != "help"}
    assert options == {f.name for f in dataclasses.fields(GenerationSettings)}
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "0"])


class FakeCudaModel:
    """What auto_batch_size reads of a model: its device, dtype and config (the 7B shape, SmolLM2's vocabulary)."""

    def __init__(self):
        from transformers import LlamaConfig

        from medqa_lab.bench.random_model import SHAPES

        self.device = torch.device("cuda", 0)
        self.dtype = torch.bfloat16
        self.config = LlamaConfig(vocab_size=49152, **SHAPES["llama2-7b"])


@pytest.mark.parametrize("card_gib,cap_gib", [(24, None), (80, None), (141, None), (141, 24)])
def test_auto_batch_fits_the_free_memory_of_the_card(monkeypatch, card_gib, cap_gib):
    """The 7B in bf16 (12.9 GiB of weights) on a card of this size, capped or not: the batch's KV cache and working
    memory fit what is left, and the batches are evened out."""
    from medqa.generation import MAX_AUTO_BATCH, auto_batch_size, kv_bytes_per_token

    gib, weights = 2**30, 12.9 * 2**30
    total = card_gib * gib
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (total - weights - 0.5 * gib, total))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: weights)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: weights)
    fraction = cap_gib / card_gib if cap_gib else 1.0
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: fraction)
    model = FakeCudaModel()
    batch = auto_batch_size(model, rows=500, prompt_len=100, max_new_tokens=256)
    budget = min(card_gib, cap_gib or card_gib) * gib - weights
    kv = kv_bytes_per_token(model.config, 2) * 356 * batch
    assert 1 <= batch <= min(500, MAX_AUTO_BATCH) and kv < 0.9 * budget
    assert 500 % batch == 0 or 500 - (500 // batch) * batch > batch // 2 or batch == 500  # no nearly empty batch
    if card_gib == 24 or cap_gib == 24:
        assert 16 <= batch <= 64  # a 24 GB card holds the 7B and a few dozen answers
    else:
        assert batch >= 128

"""The model scored is the model trained: the adapter merged into the dequantised NF4 weights gives the
outputs of the 4-bit layers with the adapter on top (the training forward), and not those of a merge into the
unquantised base. Greedy generation stops at the end-of-turn token or the format's stop text."""

import pytest
import torch

from medqa.inference import GenerationSettings, generate_answers, load_model


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

    from medqa.inference import _answer_no_repeat_ngram

    answer_scope = _answer_no_repeat_ngram()(2, prompt_length=3)
    scores = torch.zeros(1, 10)
    named = torch.tensor([[1, 2, 9, 1]])  # prompt 1 2 9, answer 1: may the answer go on with 2?
    assert torch.isinf(NoRepeatNGramLogitsProcessor(2)(named, scores.clone())[0, 2])
    assert not torch.isinf(answer_scope(named, scores.clone())).any()
    looping = torch.tensor([[1, 2, 9, 4, 5, 4]])  # answer 4 5 4: 5 would repeat the bigram (4, 5)
    banned = torch.isinf(answer_scope(looping, scores.clone()))[0]
    assert banned[5] and banned.sum() == 1

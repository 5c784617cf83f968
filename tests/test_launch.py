"""recipes/accelerate/: the configs parse with accelerate's own code, agree with the recipes, and
finetune.py builds the right `accelerate launch` for one GPU, several, ZeRO-2 and several machines."""

import json

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from conftest import RECIPES, REPO, run_main

from medqa.errors import UserError
from medqa.launch import ACCELERATE_DIR, CONFIGS, ZERO2_JSON, Topology, accelerate_args
from medqa.recipe import load_recipe

# accelerate refuses these beside a deepspeed_config_file: they belong in the JSON
DS_FILE_ONLY = {
    "gradient_accumulation_steps",
    "gradient_clipping",
    "zero_stage",
    "offload_optimizer_device",
    "offload_param_device",
    "mixed_precision",
}


def launch(cfg, topo, devices=2):
    """accelerate_args, then accelerate's own parsing and validation of the resulting command line."""
    extra = accelerate_args(cfg, topo, devices)
    args = launch_command_parser().parse_args([*extra, "-m", "axolotl.cli.train", "run/recipe.yml"])
    # accelerate has no public function that validates a launch command line short of launching it
    args, defaults, mp_from_config = _validate_launch_command(args)
    return extra, args, defaults, mp_from_config


def test_configs_parse_and_leave_precision_to_the_recipe():
    assert sorted(p.name for p in (REPO / ACCELERATE_DIR).iterdir()) == [
        "deepspeed_zero2.yaml",
        "multi_gpu.yaml",
        "single_gpu.yaml",
        "zero2.json",
    ]
    kinds = {name: load_config_from_file(str(path)) for name, path in CONFIGS.items()}
    assert [kinds[k].distributed_type.value for k in ("single", "ddp", "zero2")] == ["NO", "MULTI_GPU", "DEEPSPEED"]
    assert kinds["single"].num_processes == 1
    # "no" lets TrainingArguments' bf16/fp16 (the recipe's) decide; a bf16 here would autocast an fp32 recipe
    assert kinds["single"].mixed_precision == kinds["ddp"].mixed_precision == "no"
    raw = yaml.safe_load(CONFIGS["zero2"].read_text())
    assert "mixed_precision" not in raw and not DS_FILE_ONLY & set(raw["deepspeed_config"])
    assert (REPO / raw["deepspeed_config"]["deepspeed_config_file"]).resolve() == (REPO / ZERO2_JSON).resolve()
    assert json.loads(ZERO2_JSON.read_text())["zero_optimization"]["stage"] == 2


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_zero2_json_resolves_to_each_recipes_batch_and_precision(recipe):
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    cfg = load_recipe(recipe)
    bf16 = cfg.get("bf16") in (True, "auto")  # auto is bf16 on every card DeepSpeed runs QLoRA on here
    args = TrainingArguments(
        output_dir="unused",
        per_device_train_batch_size=cfg["micro_batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        max_grad_norm=cfg["max_grad_norm"],
        bf16=bf16,
        fp16=bool(cfg.get("fp16")),
        use_cpu=True,
        report_to=[],
    )
    ds = HfTrainerDeepSpeedConfig(str(ZERO2_JSON))
    ds.trainer_config_process(args)
    assert ds.mismatches == []  # no value in the JSON contradicts the recipe
    assert ds.is_zero2()
    assert ds.config["train_micro_batch_size_per_gpu"] == cfg["micro_batch_size"]
    assert ds.config["gradient_accumulation_steps"] == cfg["gradient_accumulation_steps"]
    assert ds.config["train_batch_size"] == cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"]
    assert ds.config["gradient_clipping"] == cfg["max_grad_norm"]
    assert ds.config["bf16"]["enabled"] is bf16 and ds.config["fp16"]["enabled"] is bool(cfg.get("fp16"))


def test_one_gpu_and_ddp():
    extra, args, _, _ = launch({}, Topology())
    assert extra == ["--config_file", str(CONFIGS["single"])] and args.num_processes == 1 and not args.multi_gpu
    cfg = {}
    extra, args, _, _ = launch(cfg, Topology(gpus=2))
    assert args.multi_gpu and args.num_processes == 2 and args.num_machines == 1 and not args.use_deepspeed
    assert "deepspeed" not in cfg


def test_zero2_sets_axolotls_key_and_passes_accelerates_checks(monkeypatch):
    from accelerate.utils import DeepSpeedPlugin

    cfg = {}
    extra, args, defaults, mp_from_config = launch(cfg, Topology(gpus=2, dist="zero2"))
    assert args.use_deepspeed and args.num_processes == 2
    assert cfg["deepspeed"] == args.deepspeed_config_file == str((REPO / ZERO2_JSON).resolve())
    # what launch_command hands the workers, checked by the plugin the workers build
    fields = [*defaults.deepspeed_config, *(["mixed_precision"] if mp_from_config else [])]
    monkeypatch.setenv("ACCELERATE_CONFIG_DS_FIELDS", ",".join(fields))
    assert DeepSpeedPlugin(hf_ds_config=cfg["deepspeed"]).zero_stage == 2
    monkeypatch.setenv("ACCELERATE_CONFIG_DS_FIELDS", ",".join([*fields, "mixed_precision"]))
    with pytest.raises(ValueError, match="deepspeed_config_file"):  # the check is live: a mix is refused
        DeepSpeedPlugin(hf_ds_config=cfg["deepspeed"])


def test_several_machines():
    topo = Topology(gpus=2, dist="zero2", nodes=2, node_rank=1, main_address="10.0.0.1", main_port=29555)
    _, args, _, _ = launch({}, topo)
    assert (args.num_processes, args.num_machines, args.machine_rank) == (4, 2, 1)
    assert (args.main_process_ip, args.main_process_port) == ("10.0.0.1", 29555)
    _, args, _, _ = launch({}, Topology(gpus=8, nodes=2, node_rank=0, main_address="node0"), devices=8)
    assert args.multi_gpu and args.num_processes == 16


@pytest.mark.parametrize(
    "topo, devices, message",
    [
        (Topology(gpus=3), 2, "asked for 3 GPUs, this machine has 2"),
        (Topology(gpus=2, nodes=2), 2, "MAIN_ADDR: NODES=2 needs the address"),
        (Topology(nodes=2, node_rank=2, main_address="h"), 2, "NODE_RANK: must be 0..1"),
        (Topology(gpus=2), 0, "need CUDA"),
        (Topology(dist="zero2"), 0, "need CUDA"),
    ],
)
def test_impossible_topologies_are_one_line_errors(topo, devices, message):
    with pytest.raises(UserError, match=message):
        accelerate_args({}, topo, devices)


def test_cpu_keeps_one_process():
    assert accelerate_args({}, Topology(), 0)[:2] == ["--num_processes", "1"]


def test_make_finetune_gpus_on_cpu_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_main("scripts/finetune.py", "recipes/smollm2-135m/qlora.yml", "--gpus", "2", "--dist", "zero2")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: GPUS: several GPUs, machines or DeepSpeed need CUDA, and this machine has none"
    )


def test_scale_check_needs_the_gpus_it_asks_for(tmp_path):
    import torch

    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has 2 GPUs")
    result = run_main("scripts/scale_check.py", "--model", tmp_path / "m", "--gpus", "2", "--out", tmp_path)
    assert result.returncode == 2 and list(tmp_path.iterdir()) == []
    assert result.stderr.strip() == f"error: --gpus: asked for 2 GPUs, this machine has {torch.cuda.device_count()}"

"""bitsandbytes' paged optimizers resume from a saved state once `medqa.resume` has repaged it; every
recipe with a paged optimizer carries the plugin that does so."""

import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from conftest import RECIPES, REPO

from medqa.resume import repage


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_with_a_paged_optimizer_carry_the_resume_plugin(recipe):
    cfg = yaml.safe_load(recipe.read_text())
    if str(cfg.get("optimizer", "")).startswith("paged_"):
        assert "medqa.resume.PagedResumePlugin" in cfg.get("plugins", [])


def test_repage_leaves_other_optimizers_alone():
    param = torch.nn.Parameter(torch.ones(4))
    param.grad = torch.ones(4)
    optimizer = torch.optim.AdamW([param])
    optimizer.step()
    before = {k: v.clone() for k, v in optimizer.state[param].items()}
    assert repage(optimizer) == 0
    assert all(torch.equal(before[k], v) for k, v in optimizer.state[param].items())


# Two steps, save the state as the Trainer does, two more steps; then a fresh optimizer loads the state,
# (optionally) repages it and takes the same two steps. Prints the largest difference to the uninterrupted run.
SCRIPT = textwrap.dedent(
    """
    import io, sys, torch, bitsandbytes as bnb
    from medqa.resume import repage
    torch.manual_seed(0)
    start = torch.randn(512, 512, device="cuda")  # > 1e5 elements: the state is paged
    grads = [torch.randn(512, 512, device="cuda") for _ in range(4)]
    def steps(opt, p, gs):
        for g in gs:
            p.grad = g.clone()
            opt.step()
    p = torch.nn.Parameter(start.clone())
    opt = bnb.optim.PagedAdamW32bit([p], lr=1e-2)
    steps(opt, p, grads[:2])
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    resumed = torch.nn.Parameter(p.detach().clone())
    steps(opt, p, grads[2:])
    buf.seek(0)
    opt2 = bnb.optim.PagedAdamW32bit([resumed], lr=1e-2)
    opt2.load_state_dict(torch.load(buf, map_location="cuda", weights_only=True))
    if sys.argv[1] == "repage":
        print("repaged", repage(opt2))
    steps(opt2, resumed, grads[2:])
    torch.cuda.synchronize()
    print("max_diff", (resumed - p).abs().max().item())
    """
)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="paged optimizers page only on CUDA")
def test_paged_adamw_resumes_once_repaged():
    def run(mode):
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True, text=True, timeout=300
        )

    fixed = run("repage")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaged 2" in fixed.stdout  # exp_avg and exp_avg_sq
    assert float(fixed.stdout.split("max_diff")[1]) == pytest.approx(0.0, abs=1e-6)  # as if never interrupted
    broken = run("as-loaded")  # what the plugin prevents: bitsandbytes ends the process at the first step
    assert broken.returncode != 0 and "invalid argument" in broken.stdout + broken.stderr

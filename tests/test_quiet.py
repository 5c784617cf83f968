"""Quiet by default: the third-party noise every command used to print (torchao's CUDA libraries, torch's
register_constant deprecation, bitsandbytes' kernel lookup) is silenced where it is made; VERBOSE=1 shows it."""

from conftest import ENV, run_script

from medqa import quiet

IMPORTS = "import medqa, peft, bitsandbytes, axolotl.utils.config"
NOISE = ("Failed to load", "register_constant", "publisher trust")


def test_our_processes_start_and_load_quietly_and_verbose_shows_everything(tiny_model):
    """Importing what every command imports prints none of the noise, and transformers' "Loading weights" bar (what
    `make ask` drew before its answer) is off; VERBOSE=1 shows both."""
    load = f"{IMPORTS}; from medqa.inference import load_model; load_model({str(tiny_model)!r})"
    quiet_run = run_script("-c", load)
    loud = run_script("-c", load, env={**ENV, "VERBOSE": "1"})
    assert quiet_run.returncode == 0 and loud.returncode == 0, quiet_run.stderr[-2000:]
    assert not any(n in quiet_run.stderr + quiet_run.stdout for n in NOISE), quiet_run.stderr
    assert any(n in loud.stderr + loud.stdout for n in NOISE)  # the noise is real: silenced, not gone
    assert "Loading weights" not in quiet_run.stderr + quiet_run.stdout
    assert "Loading weights" in loud.stderr + loud.stdout


def test_a_training_processs_known_noise_lines_are_dropped():
    assert quiet.noise(
        "Failed to load /x/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so: Could not load this library"
    )
    assert quiet.noise(
        "W1128 torch/utils/_pytree.py:630] <enum 'X'> is an Enum subclass and is now natively supported by "
        "torch.compile as an opaque value type."
    )
    assert not quiet.noise("{'loss': 2.31, 'grad_norm': 0.8, 'learning_rate': 0.0002, 'epoch': 0.5}")
    assert not quiet.noise("error: recipes/x.yml: unknown key 'lora_rr'")


def test_training_is_started_with_axolotls_own_quiet_settings(monkeypatch):
    monkeypatch.delenv("AXOLOTL_LOG_LEVEL", raising=False)
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "0")  # the user's own setting wins
    assert quiet.child_env() == {"AXOLOTL_LOG_LEVEL": "WARNING"}
    monkeypatch.setattr(quiet, "VERBOSE", True)
    assert quiet.child_env() == {}


def test_the_hub_login_check_is_noise_only_offline(monkeypatch):
    line = "[WARNING] [axolotl.cli.checks] Error verifying HuggingFace token. Remember to log in"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert quiet.noise(line)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not quiet.noise(line)

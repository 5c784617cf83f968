"""Known third-party noise, silenced where it is made, so that a `make` target prints our progress and real warnings.
Set VERBOSE=1 to see everything. Each entry names the library and why its message is noise here.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

VERBOSE = os.environ.get("VERBOSE") == "1"

# loggers whose warnings say nothing a user can act on
LOGGERS = {
    # torchao (imported by peft and Axolotl) tries to load its CUDA-only extension libraries on any machine and logs
    # each one that a CPU machine cannot load
    "torchao": logging.ERROR,
    # torch warns each time a library registers an Enum with register_constant (torchao does, at import)
    "torch.utils._pytree": logging.ERROR,
    # bitsandbytes looks for an optional CPU 4-bit kernel on the Hub; offline (or untrusted) it falls back to its own
    "bitsandbytes.backends.cpu.ops": logging.ERROR,
    # transformers says which dtype it dequantised NF4 weights to: the run's, by design (medqa.inference)
    "transformers.integrations.bitsandbytes": logging.ERROR,
    # transformers 5 ignores clean_up_tokenization_spaces for BPE tokenizers and says so at every load: the
    # GGUF-built SmolLM2 tokenizer carries the flag; decoding is right without it
    "transformers.tokenization_utils_tokenizers": logging.ERROR,
}
# Python warnings: (message regex, category)
WARNINGS = [
    # bitsandbytes' optional kernel lookup, offline: the same fallback as above
    (r"Skipping publisher trust check", UserWarning),
    # bitsandbytes on a CPU: paged optimizers are a CUDA feature; the recipe's optimizer runs unpaged
    (r"Paged optimizers are not supported on CPU", UserWarning),
    # torch's DataLoader on a CPU: pin_memory has nothing to pin to
    (r"'pin_memory' argument is set as true but no accelerator is found", UserWarning),
]
# lines of a child process (Axolotl's training) dropped from what `make finetune` shows: the same messages
LINES = re.compile(
    r"torchao/_C_\w+.*Could not load this library"
    r"|is an Enum subclass and is now natively supported by torch\.compile"
    r"|Failed to load CPU gemm_4bit_forward from kernels-community"
    r"|Skipping publisher trust check"
    r"|Paged optimizers are not supported on CPU"
    r"|Ignoring clean_up_tokenization_spaces=True for BPE tokenizer"
    r"|'pin_memory' argument is set as true but no accelerator is found"
    # DeepSpeed (imported by Axolotl) on a machine without a GPU says it falls back to the CPU
    r"|Setting accelerator to CPU\. If you have GPU or other accelerator, we were unable to detect it"
    # the source line Python prints under each of those warnings
    r"|^\s*(state\[\"state1\"\] = self\.get_state_buffer|super\(\)\.__init__\(loader\)"
    r"|gemm_4bit_forward_kernel = get_kernel\()\s*$"
)


# the environment of a child process (Axolotl's training), where its own settings silence it at the source
CHILD_ENV = {
    # Axolotl logs at INFO: the whole resolved config (~200 lines of JSON) and every loading step; its warnings
    # and the trainer's progress bar and losses still show
    "AXOLOTL_LOG_LEVEL": "WARNING",
    # datasets draws a progress bar for each shard it saves while Axolotl prepares the data
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


def child_env() -> dict[str, str]:
    """CHILD_ENV, where the user has not set these variables (nothing with VERBOSE=1)."""
    return {} if VERBOSE else {k: v for k, v in CHILD_ENV.items() if k not in os.environ}


# progress bars of the Hub libraries in our own processes: transformers' "Loading weights" and GGUF conversion bars
# (it reads huggingface_hub's switch when imported), Hub downloads, datasets' map and save bars; our own progress
# (the answers generated) still shows
PROGRESS_OFF = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def install() -> None:
    if VERBOSE:
        return
    for variable in PROGRESS_OFF:
        os.environ.setdefault(variable, "1")
    for name, level in LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    for message, category in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


# with the Hub off (make's default), Axolotl's start-up check of the Hub login cannot run and says so
OFFLINE_LINES = re.compile(r"Error verifying HuggingFace token")


def noise(line: str) -> bool:
    """Whether a line of a child process's output is known noise (never with VERBOSE=1)."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" and bool(OFFLINE_LINES.search(line))
    return not VERBOSE and (offline or bool(LINES.search(line)))

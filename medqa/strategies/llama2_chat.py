"""`type: medqa.strategies.llama2_chat`: the seed notebook's Llama-2 [INST] format."""

from medqa.strategies import loader

load = loader("llama2_chat")

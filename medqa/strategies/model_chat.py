"""`type: medqa.strategies.model_chat`: the base model's own chat template."""

from medqa.strategies import loader

load = loader("model_chat")

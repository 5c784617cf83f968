"""`type: medqa.strategies.model_chat_nosys`: the base model's own chat template, given the user turn alone."""

from medqa.strategies import loader

load = loader("model_chat_nosys")

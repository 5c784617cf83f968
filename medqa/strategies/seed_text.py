"""`type: medqa.strategies.seed_text`: the seed's text, `<s>` and `</s>` written literally; loss on the answer only."""

from medqa.strategies import loader

load = loader("seed_text")

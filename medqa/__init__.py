"""medqa: the small library behind the recipes (prompt formats, data rules, model loading, generation)."""

from medqa import quiet

quiet.install()  # before the libraries that make the noise are imported

"""medqa: the small library behind the recipes (prompt formats, data rules, model loading, generation)."""

"""The lab: what chose and measured the recipes (the lever runner, make bench, make scale-check). It imports the
product (medqa) and is never imported by it."""

"""What `make bench`, `make bench-generation` and `make scale-check` measure: training speed (the seed notebook's
setup, Axolotl's example, the recipe: `contenders`, metered by `meter`), `make eval`'s generation (`generation`),
several GPUs and machines (`scaling`), on models with random weights (`random_model`); one writer of the reports
(`report`)."""

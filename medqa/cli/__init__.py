"""The commands that the library itself runs as processes (a lever plan's jobs, scale-check's runs), as modules:
`python -m medqa.cli.finetune ...`. scripts/ and eval/ hold the same commands under their documented paths."""

"""The Ray-free seed run: the CLIP training loop (train) and what it is built from (build: a
`SeedRun`; model, temperature, swap, loss), evaluation (evaluate, metrics), whoever asks: the
study's workers, `raygap train` or the bench (through raygap.trial_kind). Nothing here imports ray."""

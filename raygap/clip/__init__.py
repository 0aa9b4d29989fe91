"""The Ray-free trial: the CLIP training loop (train), its parts (model, temperature, swap, loss),
evaluation (evaluate, metrics), and `trial.run_trial`, which runs a trial whoever asks — the
study's workers, `raygap train` or the bench. Nothing here imports ray."""

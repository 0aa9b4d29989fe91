"""The theory simulator: the paper's two-modality model of contrastive training, integrated in
float64 without a CLIP model. A trial kind of its own (`theory:` in a study file)."""

"""A results folder of 10,000 fixed-T configurations × 2 seeds with made-up metrics and four
history points each, for timing `raygap report` at scale:

    python bench/make_large_study.py /tmp/large && raygap study compact /tmp/large
    time raygap report /tmp/large          # and with --paper
"""

import sys

import numpy as np
import yaml

from raygap import results

out = results.ResultsFolder(sys.argv[1])
rng = np.random.default_rng(0)
rows, history = [], []
for i in range(10_000):
    t = float(rng.uniform(0.01, 0.4))
    for seed in (0, 1):
        gap = float(np.clip(0.7 - t + rng.normal(0, 0.05), 0.001, 2))
        m = {
            "modality_gap": gap,
            "uniformity": -1.1 - t / 2 + rng.normal(0, 0.02),
            "image_to_text_r1": 0.5 - gap / 3 + rng.normal(0, 0.02),
            "text_to_image_r1": 0.45 - gap / 3 + rng.normal(0, 0.02),
            "zero_shot_top1": 0.15 + rng.normal(0, 0.01),
            "linear_probe_top1": 0.6 + rng.normal(0, 0.02),
            "wall_seconds": 60.0,
            "cpus_held": 1.0,
            "gpus_held": 0.0,
            "recorded_at": 1000.0 + i,
        }
        m["mean_r1"] = (m["image_to_text_r1"] + m["text_to_image_r1"]) / 2
        rows.append(
            results.trial_row(f"t{i:05d}", seed, {"temperature.value": t}, {"temperature": {"kind": "fixed", "value": t}}, "completed", m)
        )
        history += [
            {
                "trial_id": f"t{i:05d}",
                "seed": seed,
                "step": s,
                "modality_gap": gap * (1 + 1 / (1 + s)),
                "mean_r1": m["mean_r1"],
                "temperature": t,
            }
            for s in (0, 100, 200, 300)
        ]
out.append(results.TRIALS, rows)
out.append(results.HISTORY, history)
out.write_text(results.SPEC, yaml.safe_dump({"name": "ten-thousand", "search": {"objectives": {"modality_gap": "min", "mean_r1": "max"}}}))

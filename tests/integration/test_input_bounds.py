"""Study files whose validation would never end: YAML aliases that expand without bound, grids too
large to hold. Each is an exit-2 error from the command line, before Ray, with nothing written."""

import re
import subprocess
import sys

from raygap.cli import main

VALUES = ", ".join(str(v) for v in range(10))


def alias_bomb(levels: int) -> str:
    lines = ["name: bomb", f"a0: &a0 [{VALUES}]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"eval: {{templates: *a{levels}}}", ""])


def test_yaml_aliases_that_expand_without_bound_are_refused_at_once(tmp_path):
    spec = tmp_path / "bomb.yaml"
    spec.write_text(alias_bomb(9))  # under 600 bytes
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "raygap", "study", "run", str(spec), "--dry-run", "--results", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    found = re.search(
        rf"error: {re.escape(str(spec))}: YAML aliases expand the file to ([0-9,]+) values, more than the 100,000", result.stderr
    )
    assert found and int(found[1].replace(",", "")) > 10**10  # the 10¹⁰ leaves alone
    assert not out.exists()


def test_a_file_with_a_few_aliases_still_loads(tmp_path, capsys):
    spec = tmp_path / "aliases.yaml"
    spec.write_text("name: aliases\ntrain: &short {steps: 3, batch_size: 8}\neval: {templates: &t ['a photo of {label}']}\n")
    assert main(["study", "run", str(spec), "--dry-run", "--results", str(tmp_path / "out")]) == 0


GRID = "name: grid\nsearch: {{sampler: grid}}\ntrain: {{steps: 3, lr: {{grid: [{lrs}]}}, warmup_steps: {{grid: [{warmups}]}}}}\n"


def test_a_grid_too_large_to_hold_is_refused_before_it_is_listed(tmp_path, capsys):
    spec = tmp_path / "grid.yaml"
    lrs = ", ".join(f"{1e-4 * (1 + i / 2000):.8g}" for i in range(2000))
    spec.write_text(GRID.format(lrs=lrs, warmups=", ".join(str(w) for w in range(1000))))  # 2,000,000 points
    assert main(["study", "run", str(spec), "--dry-run", "--results", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"error: {spec}: search.sampler 'grid': 2,000,000 configurations, more than the 1,000,000 a study can hold" in err
    assert not (tmp_path / "out").exists()


def test_a_large_grid_dry_run_lists_the_first_hundred_and_counts_the_rest(tmp_path, capsys):
    spec = tmp_path / "grid.yaml"
    lrs = ", ".join(f"{1e-4 * (1 + i / 500):.8g}" for i in range(500))
    spec.write_text(GRID.format(lrs=lrs, warmups=", ".join(str(w) for w in range(100))))  # 50,000 points
    assert main(["study", "run", str(spec), "--dry-run", "--results", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "grid: 50000 trial(s)" in out and "  … and 49,900 more" in out
    assert sum(1 for line in out.splitlines() if "train.lr=" in line) == 100


def test_an_objective_the_configuration_never_measures_is_refused(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ntrain: {steps: 3}\n")
    out = tmp_path / "out"
    cases = [
        (
            ["search.objectives={zero_shot_top1: max}", "data.probe=null"],
            "search.objectives: zero_shot_top1 is never measured in this study: "
            "zero_shot_top1 needs the probe split, and data.probe is null",
        ),
        (
            ["search.objectives={mmvp_accuracy: max}"],
            "search.objectives: mmvp_accuracy is never measured in this study: mmvp_accuracy needs an MMVP-VLM copy (data.mmvp)",
        ),
        (
            ["search.objectives={delta: min}"],
            "search.objectives: delta is never measured in this study: delta is measured by theory trials",
        ),
        (
            ["theory={}", "search.objectives={mean_r1: max}"],
            "search.objectives: mean_r1 is never measured in this study: theory trials measure only",
        ),
    ]
    for overrides, message in cases:
        command = ["study", "run", str(spec), "--dry-run", "--results", str(out)]
        assert main(command + [arg for o in overrides for arg in ("--set", o)]) == 2
        assert f"error: {spec}: {message}" in capsys.readouterr().err
    assert not out.exists()
    # With the probe kept, the same objective is fine.
    assert main(["study", "run", str(spec), "--dry-run", "--set", "search.objectives={zero_shot_top1: max}", "--results", str(out)]) == 0

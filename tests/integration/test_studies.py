"""Every study file validates, dry-runs, and (shrunk) trains its default configuration."""

import json
from pathlib import Path

import polars as pl
import pytest

from raygap.cli import main

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml"))
SHRINK = [
    "data.train={kind: synthetic, size: 256}",
    "data.eval={kind: synthetic, size: 64, seed: 1}",
    "data.probe={train: {kind: synthetic, size: 64, seed: 2}, test: {kind: synthetic, size: 32, seed: 3}}",
    "train.steps=2",
    "train.batch_size=32",
    "train.eval_interval=1",
]


COCO = sorted((Path(__file__).resolve().parents[2] / "studies" / "coco").glob("[!_]*.yaml"))


@pytest.mark.parametrize("study", COCO, ids=[p.stem for p in COCO])
def test_paper_scale_studies_validate_without_their_data(study, capsys):
    assert main(["study", "run", str(study), "--dry-run", "--no-data-check"]) == 0
    printed = capsys.readouterr().out
    assert "3 seed(s)" in printed and "4 worker(s) on GPU" in printed
    # a dry run that reads the data, and a run, without it: a clear error naming the missing path
    for dry_run in (["--dry-run"], []):
        assert main(["study", "run", str(study), *dry_run, "--results", "/nonexistent/never-written"]) == 2
        assert "data.train.annotations: file not found: /data/coco/annotations/captions_train2017.json" in capsys.readouterr().err


PAPER_SCALE = sorted((Path(__file__).resolve().parents[2] / "studies" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("study", PAPER_SCALE, ids=[p.stem for p in PAPER_SCALE])
def test_the_paper_figures_at_paper_scale_validate_for_a_gpu(study, capsys):
    assert main(["study", "run", str(study), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "each trial needs 1 worker(s) on GPU" in printed and "cannot run it: a trial needs 1 GPUs" in printed


def test_the_library_is_complete():
    names = {p.stem for p in STUDIES}
    assert {"baseline", "flt", "ts", "ts-cos", "tr", "slrt", "hs", "hs-row", "ss", "no-norm", "all", "smoke", "fig4a", "fig4b"} <= names
    assert {p.stem for p in COCO} >= {"baseline", "flt", "ts", "ts-cos", "tr", "slrt", "hs", "hs-row", "ss", "no-norm"}
    assert {p.stem for p in PAPER_SCALE} == {"fig4a", "fig4b"}
    assert {"theory-learned", "theory-fixed", "theory-mismatch"} <= names


@pytest.mark.parametrize("study", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_dry_runs(study, capsys):
    assert main(["study", "run", str(study), "--dry-run"]) == 0
    assert "trial(s)" in capsys.readouterr().out
    assert study.read_text().startswith("#")  # each file says what it asks and what the paper found


@pytest.mark.parametrize("study", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_default_configuration_trains(study, tmp_path):
    args = ["train", str(study), "--quiet", "--results", str(tmp_path)]
    for item in SHRINK:
        args += ["--set", item]
    assert main(args) == 0
    row = pl.read_parquet(tmp_path / "trials.parquet").row(0, named=True)
    assert row["status"] == "completed"
    assert row["steps"] == 2 if "theory" not in study.stem else row["delta"] is not None


# ------------------------------------------------------------------ paper figures quoted in study comments
# Convention: a study file's comment quotes a figure of the paper only as
#
#     paper Table <n> <method>[ <setting>]: <metric> <value>[, <metric> <value>]...
#
# e.g. "paper Table 5 no-norm: gap 0.468, image R@1 58.6" or "paper Table 3 FLT T=0.07: gap 0.033".
# <method> is the csv's `method` column (baseline, FLT, TS, TS-cos, TR, SLRT, HS, HS-row, SS, no-norm);
# <setting> picks the row when the table has several for that method: the csv's `setting` without its
# parenthesis, or that setting's last word (S3 for "linear schedule S3"). <metric> is one of METRICS.
# <value> is the csv's value, or that value rounded to the quoted decimals (gap and uniformity keep
# three). Comment lines are joined first, so a citation may wrap. "paper Table" is reserved for
# citations: every occurrence must parse. A cited row whose setting the csv marks "not legible" needs
# the file to say "not legible". Decimals quoted outside a citation after a metric or method name
# ("gap 0.294", "baseline's 0.294", "HS 0.225") or in a slash group ("0.294 / 68.2 / 78.4") are uncited
# paper figures, and fail.
import csv  # noqa: E402
import re  # noqa: E402

PAPER_TABLES = Path(__file__).resolve().parents[2] / "raygap" / "paper" / "tables.csv"  # the package's copy
COMMENTED = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml")) + COCO
METRICS = {
    "gap": "modality_gap",
    "uniformity": "uniformity",
    "zero-shot": "zero_shot_top1",
    "probe": "linear_probe_top1",
    "image R@1": "image_retrieval_r1",
    "text R@1": "text_retrieval_r1",
    "MMVP": "mmvp_vlm",
}
_METRIC = "|".join(re.escape(m) for m in METRICS)
_NUMBER = r"-?\d+\.\d+"
CITATION = re.compile(
    rf"paper Table (?P<table>\d+) (?P<method>[A-Za-z][\w-]*)(?: (?P<setting>[^:;()]+?))?: "
    rf"(?P<figures>(?:{_METRIC}) {_NUMBER}(?:, (?:{_METRIC}) {_NUMBER})*)"
)
FIGURE = re.compile(rf"(?P<metric>{_METRIC}) (?P<value>{_NUMBER})")
_METHODS = r"baseline|FLT|TS-cos|TS|TR|SLRT|HS-row|HS|SS|no-norm"
UNCITED = [
    re.compile(rf"\b(?:{_METRIC}|{_METHODS})(?:'s)?:?\s+(?P<value>{_NUMBER})(?!\d)(?!\s*[→…])"),
    re.compile(rf"{_NUMBER}(?:\s*/\s*{_NUMBER})+"),
]


def comment_text(text: str) -> str:
    """A study file's full-line comments, joined into one line."""
    return " ".join(line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip().startswith("#"))


def _paper_rows(csv_path: Path) -> list[dict]:
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def _setting_names(setting: str) -> set[str]:
    bare = re.sub(r"\s*\(.*\)\s*$", "", setting).strip()
    return {bare, bare.split()[-1]} if bare else set()


def _matches(quoted: str, printed: str, metric: str) -> bool:
    if not printed:
        return False
    decimals = len(quoted.split(".")[1])
    if metric in ("modality_gap", "uniformity") and decimals < 3:
        return False
    return abs(float(quoted) - float(printed)) <= 0.5 * 10**-decimals + 1e-9


def paper_figure_problems(text: str, rows: list[dict]) -> list[str]:
    """Every way a study file's comment misquotes the paper, one line each (empty: all good)."""
    comment = comment_text(text)
    problems, cited = [], []
    for m in CITATION.finditer(comment):
        cited.append(m.span())
        table, method, setting = m["table"], m["method"], (m["setting"] or "").strip()
        candidates = [r for r in rows if r["table"] == table and r["method"] == method]
        if setting:
            candidates = [r for r in candidates if setting in _setting_names(r["setting"])]
        if len(candidates) != 1:
            found = "no" if not candidates else f"{len(candidates)}"
            problems.append(f"{m[0]!r}: {found} row(s) of Table {table} for method {method!r} setting {setting!r}")
            continue
        row = candidates[0]
        if "not legible" in row["setting"] and "not legible" not in comment:
            problems.append(f"{m[0]!r}: Table {table}'s row is {row['setting']!r}; the comment must say so ('not legible')")
        for f in FIGURE.finditer(m["figures"]):
            column = METRICS[f["metric"]]
            if not _matches(f["value"], row[column], column):
                problems.append(
                    f"{m[0]!r}: {f['metric']} {f['value']} is not Table {table} {method} {row['setting']!r}'s "
                    f"{column} ({row[column] or 'empty'})"
                )
    for m in re.finditer(r"paper Table", comment):
        if not any(a <= m.start() < b for a, b in cited):
            problems.append(f"unparsed citation: {comment[m.start() : m.start() + 60]!r}")
    for pattern in UNCITED:
        for m in pattern.finditer(comment):
            if not any(a <= m.start() < b for a, b in cited):
                problems.append(f"uncited paper figure: {m[0]!r} in {comment[max(0, m.start() - 40) : m.end() + 10]!r}")
    return problems


@pytest.fixture(scope="module")
def paper_rows():
    if not PAPER_TABLES.exists():
        pytest.skip(f"the paper's tables are not at {PAPER_TABLES} (CI keeps shared/ beside the clone)")
    return _paper_rows(PAPER_TABLES)


@pytest.mark.parametrize("study", COMMENTED, ids=[f"coco/{p.stem}" if p.parent.name == "coco" else p.stem for p in COMMENTED])
def test_study_comments_quote_the_paper_tables_exactly(study, paper_rows):
    assert paper_figure_problems(study.read_text(), paper_rows) == []


def test_paper_figure_check_catches_misquotes(paper_rows):
    good = "# paper Table 5 no-norm: gap 0.468, image R@1 58.6; paper Table 2 HS: gap 0.225 (p not legible)\n"
    assert paper_figure_problems(good, paper_rows) == []
    bad = {
        "# paper Table 5 no-norm: gap 0.294\n": "is not Table 5 no-norm",  # the baseline's number on no-norm's row
        "# paper Table 3 FLT T=0.07: image R@1 75.4\n": "is not Table 3 FLT",
        "# paper Table 5 HS: gap 0.028\n": "3 row(s) of Table 5",  # three HS rows: the setting is needed
        "# paper Table 2 SS: gap 0.139\n": "not legible",
        "# paper Table 2 baseline: gap 0.29\n": "is not Table 2 baseline",  # gap keeps three decimals
        "# Paper: HS gap 0.225 against the baseline's 0.294.\n": "uncited paper figure",
        "# baseline 0.294 / 68.2 / 78.4\n": "uncited paper figure",
        "# see paper Table 9\n": "unparsed citation",
    }
    for text, message in bad.items():
        problems = paper_figure_problems(text, paper_rows)
        assert any(message in p for p in problems), (text, problems)


def test_no_norm_is_described_as_a_variant_that_enlarges_the_gap():
    comment = comment_text((Path(__file__).resolve().parents[2] / "studies" / "no-norm.yaml").read_text())
    assert "ENLARGES the gap" in comment and "NOT a mitigation" in comment
    assert "paper Table 5 no-norm: gap 0.468" in comment  # checked against the csv by the test above


def test_a_study_keeps_its_model_measure_gives_its_row_back_and_fine_tuning_starts_there(tmp_path, capsys):
    """The loop of issue 29: a study that keeps weights and embeddings; `raygap measure` of its
    checkpoint and of its embeddings gives the trial's row; studies/finetune/ from its results
    folder (one kept seed) starts where the kept model ended."""
    studies = Path(__file__).resolve().parents[2] / "studies"
    shrink = [a for item in SHRINK for a in ("--set", item)]
    kept = tmp_path / "smoke-weights"
    keep = ["--set", "artifacts={weights: final, embeddings: true}", "--no-dashboard"]
    assert main(["study", "run", str(studies / "smoke.yaml"), "--results", str(kept), *keep, *shrink]) == 0
    row = pl.read_parquet(kept / "trials.parquet").row(0, named=True)
    smoke_last = pl.read_parquet(kept / "history.parquet").sort("step").row(-1, named=True)
    (embeddings,) = kept.glob("artifacts/*/seed0/embeddings.parquet")
    smoke_data = ["--set", SHRINK[1], "--set", SHRINK[2]]  # the eval and probe splits the study measured on
    for source in (["--embeddings", str(embeddings)], ["--data", str(studies / "smoke.yaml"), "--pretrained", str(kept), *smoke_data]):
        out = tmp_path / "measured.parquet"
        assert main(["measure", *source, "-o", str(out)]) == 0
        measured = pl.read_parquet(out).row(0, named=True)
        for name in ("modality_gap", "relative_gap", "image_to_text_r1", "modality_separability"):
            assert measured[name] == pytest.approx(row[name], abs=1e-6), (source[0], name)
    finetune = studies / "finetune" / "finetune.yaml"
    pretrained = ["--set", f"model.pretrained={kept}"]
    assert main(["study", "run", str(finetune), "--dry-run", *pretrained]) == 0
    assert "8 trial(s)" in capsys.readouterr().out
    out = tmp_path / "ft"  # a real study: its trials resolve the folder to the kept file too
    assert (
        main(["study", "run", str(finetune), "--results", str(out), "--no-dashboard", *pretrained, "--set", "search.trials=1", *shrink])
        == 0
    )
    assert pl.read_parquet(out / "trials.parquet")["status"].to_list() == ["completed"]
    first = pl.read_parquet(out / "history.parquet").sort("step").row(0, named=True)
    for name in ("modality_gap", "image_to_text_r1", "text_to_image_r1"):
        assert first[name] == pytest.approx(smoke_last[name], abs=1e-6), name


def test_the_families_study_runs_shrunk_and_reports_each_loss(tmp_path, capsys):
    """studies/families.yaml through a real Ray Tune study (two first configurations, SigLIP and
    m3mix, then one TPE draw): each trains with its loss, SigLIP's bias is logged at every point, the
    front is computed, and the report's table tells the losses apart and says they are not in the paper."""
    first = (
        "search.first=[{loss: {kind: siglip, bias_init: -10.0}, temperature: {kind: learned, init: 0.1}, swap: {kind: none}},"
        " {loss: {kind: m3mix, weight: 0.5, alpha: 0.5}, temperature: {kind: fixed, value: 0.04}, swap: {kind: none}}]"
    )
    args = ["study", "run", "studies/families.yaml", "--results", str(tmp_path / "families"), "--no-dashboard"]
    for item in [*SHRINK, "search.trials=3", "search.repeats=1", first]:
        args += ["--set", item]
    assert main(args) == 0
    trials = pl.read_parquet(tmp_path / "families" / "trials.parquet")
    assert trials["status"].to_list() == ["completed"] * 3
    kinds = {json.loads(c)["loss"]["kind"]: t for t, c in trials.select("trial_id", "config").iter_rows()}
    assert {"siglip", "m3mix"} <= set(kinds)
    history = pl.read_parquet(tmp_path / "families" / "history.parquet")
    siglip = history.filter(pl.col("trial_id") == kinds["siglip"]).sort("step")
    assert siglip["logit_bias"][0] == -10.0 and siglip["logit_bias"].null_count() == 0 and siglip["temperature"][0] == pytest.approx(0.1)
    assert (tmp_path / "families" / "pareto.parquet").exists()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "families"), "--paper"]) == 0
    markdown = (tmp_path / "families" / "report" / "report.md").read_text()
    assert "| families | loss=siglip" in markdown and "| families | loss=m3mix" in markdown
    assert "not in the paper: it trains with CLIP's loss only (loss.kind siglip)" in markdown
    assert "0 of 3 configuration(s) match a row of its tables" in markdown
    assert "; 3 with a loss the paper did not train with, not in the paper" in markdown

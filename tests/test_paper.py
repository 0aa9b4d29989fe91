"""The paper's tables as package data, which row a configuration reproduces, and `raygap report
--paper` laying a study's configurations beside those rows."""

import pytest
import yaml

from raygap import paper, results
from raygap.cli import main


def test_the_tables_hold_the_papers_numbers():
    tables = paper.paper_tables()
    assert tables.height == 39 and sorted(tables["table"].unique()) == [1, 2, 3, 4, 5]
    flt = tables.filter((tables["table"] == 3) & (tables["setting"] == "T=0.04")).row(0, named=True)
    assert (flt["modality_gap"], flt["image_retrieval_r1"], flt["text_retrieval_r1"]) == (0.122, 73.44, 82.66)
    assert "arXiv 2412.07909" in paper.CITATION


@pytest.mark.parametrize(
    "config, method",
    [
        ({"temperature": {"kind": "learned", "lr_scale": 1.0}}, ("baseline", "learned temperature")),
        ({"temperature": {"kind": "learned", "lr_scale": 0.1}}, ("SLRT", "temperature learning rate")),
        ({"temperature": {"kind": "fixed", "value": 0.07}}, ("FLT", "T=0.07")),
        ({"temperature": {"kind": "softplus"}}, ("TR", "softplus")),
        ({"temperature": {"kind": "exp_k", "k": 10.0}}, ("TR", "Scale10 ")),
        ({"temperature": {"kind": "exp_k", "k": 3.0}}, None),
        ({"temperature": {"kind": "learned", "lr_scale": 1.0}, "swap": {"kind": "hard", "p": 0.1}}, ("HS", "p=0.1")),
        ({"temperature": {"kind": "learned", "lr_scale": 1.0}, "swap": {"kind": "hard_row", "p": 0.5}}, ("HS-row", "Hard Swap Feature")),
        ({"temperature": {"kind": "fixed", "value": 0.04}, "swap": {"kind": "hard", "p": 0.1}}, None),  # no such row
        ({"temperature": {"kind": "schedule", "start": 0.01, "end": 0.05}}, None),  # endpoints not legible
        ({"temperature": {"kind": "fixed", "value": 1.0}, "model": {"normalize": False}}, ("no-norm", "Remove Normalization")),
    ],
)
def test_which_paper_method_a_configuration_reproduces(config, method):
    assert paper.paper_method(config) == method


def test_the_row_takes_every_metric_from_tables_3_to_5_and_mmvp_from_table_1():
    row = paper.paper_row({"temperature": {"kind": "fixed", "value": 0.04}})
    assert (row["table"], row["modality_gap"], row["zero_shot_top1"], row["mmvp_vlm"]) == (3, 0.122, 14.4, 11.852)
    hs = paper.paper_row({"temperature": {"kind": "learned"}, "swap": {"kind": "hard", "p": 1.0}})
    assert (hs["table"], hs["setting"], hs["modality_gap"], hs["mmvp_vlm"]) == (5, "p=1", 0.028, None)
    assert paper.paper_row({"temperature": {"kind": "fixed", "value": 0.05}}) is None  # T=0.05 is not in the grid


def test_report_paper_lays_each_matching_configuration_beside_its_row(tmp_path):
    folder = results.ResultsFolder(tmp_path / "flt")
    rows = []
    for trial, value, gap, t2i in (("a", 0.04, 0.10, 0.70), ("b", 0.05, 0.05, 0.60)):
        config = {"temperature": {"kind": "fixed", "value": value}, "swap": {"kind": "none"}, "model": {"normalize": True}}
        for seed in (0, 1):
            metrics = {"modality_gap": gap, "uniformity": -1.2, "image_to_text_r1": 0.8, "text_to_image_r1": t2i, "mean_r1": (0.8 + t2i) / 2,
                       "zero_shot_top1": 0.15, "linear_probe_top1": 0.6, "recorded_at": 1.0}  # fmt: skip
            rows.append(results.trial_row(trial, seed, {"temperature.value": value}, config, "completed", metrics))
    folder.append(results.TRIALS, rows)
    folder.write_text(results.SPEC, yaml.safe_dump({"name": "flt", "search": {"objectives": {"modality_gap": "min", "mean_r1": "max"}}}))
    assert main(["report", str(tmp_path / "flt"), "--paper"]) == 0
    markdown = (tmp_path / "flt" / "report" / "report.md").read_text()
    assert "## Beside the paper: 1 of 2 configuration(s) match a row of its tables" in markdown
    line = next(line for line in markdown.splitlines() if "Table 3: FLT T=0.04" in line)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:4] == ["flt", "temperature.value=0.04", "2", "Table 3: FLT T=0.04"]
    assert cells[4:] == ["0.1 / 0.122 (-0.022)", "-1.2 / -1.183 (-0.017)", "15 / 14.4 (+0.6)", "60 / 61.98 (-1.98)",
                         "70 / 73.44 (-3.44)", "80 / 82.66 (-2.66)", "— / 11.852"]  # fmt: skip
    assert main(["report", str(tmp_path / "flt")]) == 0
    assert "Beside the paper" not in (tmp_path / "flt" / "report" / "report.md").read_text()

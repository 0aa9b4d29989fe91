"""The paper's tables as package data, which row a configuration reproduces, and `raygap report
--paper` laying a study's configurations beside those rows."""

import typing

import pytest
import yaml

from raygap import paper, results
from raygap.cli import main
from raygap.config import sections

LEARNED = {"kind": "learned", "init": 0.07, "floor": 0.01, "lr_scale": 1.0}
# The paper's set-up, as a resolved configuration of studies/coco/ writes it.
COCO = {
    "model": {"name": "RN50", "normalize": True},
    "data": {"train": {"kind": "coco"}, "eval": {"kind": "coco"}, "probe": {"train": {"kind": "cifar10"}, "test": {"kind": "cifar10"}}},
}


def test_the_tables_hold_the_papers_numbers():
    tables = paper.paper_tables()
    assert tables.height == 39 and sorted(tables["table"].unique()) == [1, 2, 3, 4, 5]
    flt = tables.filter((tables["table"] == 3) & (tables["setting"] == "T=0.04")).row(0, named=True)
    assert (flt["modality_gap"], flt["image_retrieval_r1"], flt["text_retrieval_r1"]) == (0.122, 73.44, 82.66)
    assert "arXiv 2412.07909" in paper.CITATION


def test_every_row_says_which_settings_it_states_and_which_it_does_not():
    tables = paper.paper_tables()
    for row in tables.iter_rows(named=True):
        stated, unknown = paper.STATED[(row["method"], row["setting"])]
        assert not set(stated) & set(unknown)
        if "not legible" in row["setting"] and (row["table"], row["method"]) != (2, "FLT"):
            assert unknown, row  # a row marked illegible is never matched
    # Table 2's FLT row, its T not legible, prints Table 3's T = 0.04 numbers digit for digit: the same runs.
    flt = tables.filter(tables["method"] == "FLT")
    table2, table3 = (flt.filter(flt["table"] == t).drop("table", "setting", "mmvp_vlm") for t in (2, 3))
    assert table2.row(0) == table3.filter(flt.filter(flt["table"] == 3)["setting"] == "T=0.04").row(0)
    assert paper.STATED[("FLT", flt["setting"][0])][0]["temperature.value"] == 0.04
    # Every row speaks of every setting its method's configuration has: a new config field fails here.
    for section, spec in (("temperature", sections.TemperatureSpec), ("swap", sections.SwapSpec)):
        fields = {v.model_fields["kind"].default: set(v.model_fields) for v in typing.get_args(typing.get_args(spec)[0])}
        for stated, unknown in paper.STATED.values():
            kind = stated[f"{section}.kind"]
            assert {k.split(".", 1)[1] for k in (*stated, *unknown) if k.startswith(f"{section}.")} == fields[kind], (section, kind)


# ------------------------------------------------------------------ configurations the paper does not state
NOT_STATED = {
    # the paper's SLRT row is s = 0.1
    "SLRT s=0.5": {"temperature": {**LEARNED, "lr_scale": 0.5}},
    # Table 2 does not give SS's p, nor whether λ is drawn per pair or per coordinate
    "SS p=0.3 per coordinate": {"temperature": LEARNED, "swap": {"kind": "soft", "p": 0.3, "per": "coordinate"}},
    "SS p=0.1 per pair": {"temperature": LEARNED, "swap": {"kind": "soft", "p": 0.1, "per": "pair"}},
    # Table 5's Hard Swap Feature row does not give its p
    "HS-row p=0.01": {"temperature": LEARNED, "swap": {"kind": "hard_row", "p": 0.01}},
    # Table 5's Remove Normalization row does not give its frozen T
    "no-norm T=0.4": {"temperature": {"kind": "fixed", "value": 0.4}, "model": {"normalize": False}},
    "no-norm T=0.07": {"temperature": {"kind": "fixed", "value": 0.07}, "model": {"normalize": False}},
    # the baseline is OpenCLIP's T₀ = 0.07, τ ≤ 100
    "learned init 0.5 floor 0.05": {"temperature": {**LEARNED, "init": 0.5, "floor": 0.05}},
    "learned init 0.05": {"temperature": {"kind": "learned", "init": 0.05}},
    # no swap at all is not Table 5's p = 0.1 (a prefix of "p=0.1" once matched it)
    "HS p=0": {"temperature": LEARNED, "swap": {"kind": "hard", "p": 0.0}},
    "HS p=0.1, SLRT s=0.5": {"temperature": {**LEARNED, "lr_scale": 0.5}, "swap": {"kind": "hard", "p": 0.1}},
    "TR softplus init 0.5": {"temperature": {"kind": "softplus", "init": 0.5}},
    "FLT T=0.0401": {"temperature": {"kind": "fixed", "value": 0.0401}},
    "TR k=3": {"temperature": {"kind": "exp_k", "k": 3.0}},
    "TS": {"temperature": {"kind": "schedule", "start": 0.01, "end": 0.05}},  # endpoints not legible
    "TS-cos": {"temperature": {"kind": "cosine", "low": 0.01, "high": 0.05, "period": 100}},
}


@pytest.mark.parametrize("config", NOT_STATED.values(), ids=NOT_STATED.keys())
def test_a_setting_the_paper_does_not_state_has_no_row_to_compare_with(config):
    assert paper.paper_row(config) is None
    match = paper.paper_match(config)
    assert match is not None and match.status != "matched" and match.reason.startswith("not compared")


@pytest.mark.parametrize(
    "config, status, shown, why",
    [
        (NOT_STATED["SLRT s=0.5"], "unmatched", None, "temperature.lr_scale=0.5 (paper: 0.1, 1)"),
        (
            NOT_STATED["learned init 0.5 floor 0.05"],
            "unmatched",
            None,
            "temperature.init=0.5 (paper: 0.07); temperature.floor=0.05 (paper: 0.01)",
        ),
        (NOT_STATED["FLT T=0.0401"], "unmatched", None, "temperature.value=0.0401 (paper: 0.01, 0.02, 0.04, 0.07, 0.1, 0.2, 0.3, 0.4)"),
        (NOT_STATED["SS p=0.3 per coordinate"], "not legible", (2, "SS"), "swap.p, swap.per"),
        (NOT_STATED["HS-row p=0.01"], "not legible", (5, "HS-row"), "swap.p"),
        (NOT_STATED["no-norm T=0.4"], "not legible", (5, "no-norm"), "temperature.value"),
        (NOT_STATED["HS p=0"], "not legible", (2, "HS"), "swap.p"),  # Table 2's HS p is not legible
        (NOT_STATED["TS"], "not legible", None, "TS rows (S0, S1, S2, S3)"),  # four rows: none to show
    ],
)
def test_why_a_configuration_is_not_compared(config, status, shown, why):
    match = paper.paper_match(config)
    assert match.status == status and why in match.reason
    assert (None if match.row is None else (match.row["table"], match.row["method"])) == shown


@pytest.mark.parametrize("kind", ["siglip", "cyclip", "inmodal_separation", "m3mix"])
def test_a_loss_the_paper_did_not_train_with_is_not_in_the_paper(kind):
    """Even with the paper's exact FLT setting, another loss has no row: the paper trains CLIP's."""
    config = {"temperature": {"kind": "fixed", "value": 0.07}, "loss": {"kind": kind}}
    match = paper.paper_match(config)
    assert match.status == "unmatched" and match.row is None
    assert match.reason == f"not in the paper: it trains with CLIP's loss only (loss.kind {kind})"
    assert paper.paper_match({**config, "loss": {"kind": "clip"}}).status == "matched"


# ------------------------------------------------------------------ configurations the paper states
@pytest.mark.parametrize(
    "config, table, method, setting",
    [
        ({"temperature": LEARNED}, 3, "baseline", "learned temperature"),
        ({"temperature": {"kind": "learned"}}, 3, "baseline", "learned temperature"),  # defaults filled as the spec would
        ({"temperature": {**LEARNED, "lr_scale": 0.1}}, 2, "SLRT", "temperature learning rate scaled down"),
        ({"temperature": {"kind": "fixed", "value": 0.07}}, 3, "FLT", "T=0.07"),
        ({"temperature": {"kind": "fixed", "value": 0.1 * 3}}, 3, "FLT", "T=0.3"),  # 0.30000000000000004
        ({"temperature": {"kind": "fixed", "value": 0.4 * (1 + 1e-9)}}, 3, "FLT", "T=0.4"),
        ({"temperature": {"kind": "softplus"}}, 5, "TR", "softplus"),
        ({"temperature": {"kind": "exp_k", "k": 10}}, 5, "TR", "Scale10 (tau = exp(theta/10))"),
        ({"temperature": LEARNED, "swap": {"kind": "hard", "p": 0.1}}, 5, "HS", "p=0.1"),
        ({"temperature": LEARNED, "swap": {"kind": "hard", "p": 1}}, 5, "HS", "p=1"),
        ({**COCO, "temperature": {**LEARNED, "init": 0.07000000000000001}, "swap": {"kind": "hard", "p": 0.01}}, 5, "HS", "p=0.01"),
    ],
)
def test_a_setting_the_paper_states_matches_its_row(config, table, method, setting):
    match = paper.paper_match(config)
    assert (match.status, match.row["table"], match.row["method"], match.row["setting"], match.reason) == (
        "matched",
        table,
        method,
        setting,
        "",
    )
    assert paper.paper_row(config) == match.row


@pytest.mark.parametrize(
    "config",
    [
        {},  # a pruned seed records no configuration
        {"temperature": LEARNED, "theory": {"n": 8}},  # a simulation, not CLIP training
        {"temperature": {"kind": "fixed", "value": 0.04}, "swap": {"kind": "hard", "p": 0.1}},  # no method of the paper
        {"temperature": {"kind": "learned", "max_tau": 100}},  # a key the config no longer has
    ],
)
def test_a_configuration_of_none_of_the_papers_methods_is_left_out(config):
    assert paper.paper_match(config) is None


def test_the_row_takes_every_metric_from_tables_3_to_5_and_mmvp_from_table_1():
    row = paper.paper_row({"temperature": {"kind": "fixed", "value": 0.04}})
    assert (row["table"], row["modality_gap"], row["zero_shot_top1"], row["mmvp_vlm"]) == (3, 0.122, 14.4, 11.852)
    hs = paper.paper_row({"temperature": {"kind": "learned"}, "swap": {"kind": "hard", "p": 1.0}})
    assert (hs["table"], hs["setting"], hs["modality_gap"], hs["mmvp_vlm"]) == (5, "p=1", 0.028, None)
    assert paper.paper_row({"temperature": {"kind": "fixed", "value": 0.05}}) is None  # T=0.05 is not in the grid


def test_setup_differences_name_the_model_and_data_that_are_not_the_papers():
    assert paper.setup_differences(COCO) == []
    assert paper.setup_differences({**COCO, "data": {**COCO["data"], "probe": None}}) == []  # no probe: nothing to differ
    assert paper.setup_differences({"temperature": LEARNED}) == [
        "model tiny-vit (paper: RN50)",
        "train data synthetic (paper: MSCOCO)",
        "eval data synthetic (paper: MSCOCO)",
        "probe data synthetic (paper: CIFAR-10)",
    ]
    other = {"model": {"name": "ViT-B-32"}, "data": {**COCO["data"], "train": {"kind": "webdataset"}}}
    assert paper.setup_differences(other) == ["model ViT-B-32 (paper: RN50)", "train data webdataset (paper: MSCOCO)"]


# ------------------------------------------------------------------ raygap report --paper
def _study(tmp_path, name, configs: dict[str, tuple[dict, dict, float]]):
    """A results folder: trial → (searched params, configuration, gap), two seeds each."""
    folder = results.ResultsFolder(tmp_path / name)
    rows = []
    for trial, (params, config, gap) in configs.items():
        for seed in (0, 1):
            metrics = {
                "modality_gap": gap,
                "uniformity": -1.2,
                "image_to_text_r1": 0.8,
                "text_to_image_r1": 0.7,
                "mean_r1": 0.75,
                "zero_shot_top1": 0.15,
                "linear_probe_top1": 0.6,
                "recorded_at": 1.0,
            }
            rows.append(results.trial_row(trial, seed, params, config, "completed", metrics))
    folder.append(results.TRIALS, rows)
    folder.write_text(results.SPEC, yaml.safe_dump({"name": name, "search": {"objectives": {"modality_gap": "min", "mean_r1": "max"}}}))
    assert main(["report", str(tmp_path / name), "--paper"]) == 0
    markdown = (tmp_path / name / "report" / "report.md").read_text()
    section = markdown[markdown.index("## Beside the paper") :].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith(f"| {name} |")]
    return section.splitlines()[0], [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_report_paper_lays_each_matching_configuration_beside_its_row(tmp_path):
    configs = {}
    for trial, value, gap in (("a", 0.04, 0.10), ("b", 0.05, 0.05)):
        config = {"temperature": {"kind": "fixed", "value": value}, "swap": {"kind": "none"}, "model": {"normalize": True}}
        configs[trial] = ({"temperature.value": value}, config, gap)
    title, rows = _study(tmp_path, "flt", configs)
    assert title.startswith("## Beside the paper: 1 of 2 configuration(s) match a row of its tables")
    assert "; 1 more, of its methods at a setting it does not state or states illegibly, without a difference" in title
    matched, other = rows  # matched first
    assert matched[:4] == ["flt", "temperature.value=0.04", "2", "Table 3: FLT T=0.04"]
    assert (
        matched[4] == "model tiny-vit (paper: RN50); train data synthetic (paper: MSCOCO); eval data synthetic (paper: MSCOCO); "
        "probe data synthetic (paper: CIFAR-10)"
    )
    assert matched[5:] == [
        "0.1 / 0.122 (-0.022)",
        "-1.2 / -1.183 (-0.017)",
        "15 / 14.4 (+0.6)",
        "60 / 61.98 (-1.98)",
        "70 / 73.44 (-3.44)",
        "80 / 82.66 (-2.66)",
        "— / 11.852",
    ]
    # T = 0.05 is not a T of the paper: our numbers alone, and why
    assert other[:4] == ["flt", "temperature.value=0.05", "2", "—"] and other[4].startswith(
        "not compared: no row of the paper at temperature.value=0.05"
    )
    assert other[5:] == ["0.05", "-1.2", "15", "60", "70", "80", "—"]
    assert main(["report", str(tmp_path / "flt")]) == 0
    assert "Beside the paper" not in (tmp_path / "flt" / "report" / "report.md").read_text()


def test_report_paper_gives_no_difference_to_a_soft_swap_whose_p_the_paper_does_not_give(tmp_path):
    # studies/coco/ss.yaml: p ∈ {1, 0.1, 0.01} × four learning rates, at the paper's set-up
    configs = {}
    for i, (lr, p) in enumerate((lr, p) for lr in (1e-4, 2e-4, 5e-4, 1e-3) for p in (1.0, 0.1, 0.01)):
        config = {
            **COCO,
            "train": {"lr": lr},
            "temperature": {"kind": "learned", "init": 0.07},
            "swap": {"kind": "soft", "p": p, "per": "pair"},
        }
        configs[f"t{i}"] = ({"train.lr": lr, "swap.p": p}, config, 0.1 + i / 100)
    title, rows = _study(tmp_path, "coco-ss", configs)
    assert title.startswith("## Beside the paper: 0 of 12 configuration(s) match") and "12 more, of its methods" in title
    assert len(rows) == 12
    for row in rows:
        assert row[3] == "Table 2: SS soft swap (p not legible in our copy)"
        assert row[4] == "not compared: our copy of the paper does not give this row's swap.p, swap.per"  # RN50 on MSCOCO: nothing else
        assert row[5].endswith(" / 0.139") and all("(" not in cell for cell in row[5:])  # no difference anywhere

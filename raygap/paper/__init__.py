"""The paper's Tables 1–5 as data, and which of their rows a trial's configuration reproduces.

Source: Yaras, Chen, Wang, Qu, "Explaining and Mitigating the Modality Gap in Contrastive Multimodal
Learning", arXiv 2412.07909 (CPAL 2025): MSCOCO, OpenCLIP RN50 from scratch, 3 runs per row.
`tables.csv` holds every number of Tables 1–5 as printed (accuracies and recalls in %). `STATED`
says, per row, the settings the paper gives and the ones our copy does not make legible. A
configuration matches a row only when every method setting it has (temperature, swap, feature
normalization) is one the row states, numbers equal within `REL_TOL`; a row with an illegible
setting is never matched.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl

from raygap.config import ModelSpec, SwapSpec, TemperatureSpec

CITATION = (
    'Yaras, Chen, Wang, Qu, "Explaining and Mitigating the Modality Gap in Contrastive Multimodal Learning", '
    "arXiv 2412.07909 (CPAL 2025), Tables 1–5"
)
TABLES = Path(__file__).with_name("tables.csv")
# The paper's columns → trials.parquet's, and the factor from ours to the paper's unit. The paper's
# "image retrieval" finds an image for a caption (text→image); "text retrieval" the reverse.
COLUMNS = {
    "modality_gap": ("modality_gap", 1.0),
    "uniformity": ("uniformity", 1.0),
    "zero_shot_top1": ("zero_shot_top1", 100.0),
    "linear_probe_top1": ("linear_probe_top1", 100.0),
    "image_retrieval_r1": ("text_to_image_r1", 100.0),
    "text_retrieval_r1": ("image_to_text_r1", 100.0),
    "mmvp_vlm": ("mmvp_accuracy", 100.0),
}
REL_TOL = 1e-6
"""Relative tolerance of a numeric setting: 0.1 * 3 is the paper's T = 0.3, 0.3001 is not."""
SETUP = {"model.name": "RN50", "data.train.kind": "coco", "data.eval.kind": "coco", "data.probe.kind": "cifar10"}
"""The paper's model and data (Appendix E); a row whose configuration differs says so."""
_SETUP_WORDS = {"RN50": "RN50", "coco": "MSCOCO", "cifar10": "CIFAR-10"}

# ------------------------------------------------------------------ the settings each row states
# Flat keys of a resolved configuration. OpenCLIP's learned temperature: T₀ = 0.07, τ ≤ 100.
_CLIP = {"model.normalize": True, "swap.kind": "none"}
_LEARNED = {**_CLIP, "temperature.kind": "learned", "temperature.init": 0.07, "temperature.floor": 0.01, "temperature.lr_scale": 1.0}


def _fixed(value: float) -> tuple[dict, tuple]:
    return {**_CLIP, "temperature.kind": "fixed", "temperature.value": value}, ()


_SCHEDULE = ({**_CLIP, "temperature.kind": "schedule"}, ("temperature.start", "temperature.end"))
_COSINE = ({**_CLIP, "temperature.kind": "cosine"}, ("temperature.low", "temperature.high", "temperature.period"))
_HARD = {**_LEARNED, "swap.kind": "hard"}

STATED: dict[tuple[str, str], tuple[dict, tuple[str, ...]]] = {
    # (method, setting as in tables.csv) → (settings the row states, settings our copy does not give)
    ("baseline", "learned temperature (CLIP)"): (_LEARNED, ()),
    ("baseline", "learned temperature"): (_LEARNED, ()),
    # Table 2's FLT prints Table 3's T = 0.04 numbers digit for digit: the same runs.
    ("FLT", "fixed T (value not legible in our copy; Table 3 matches T=0.04)"): _fixed(0.04),
    **{("FLT", f"T={t:g}"): _fixed(t) for t in (0.01, 0.02, 0.04, 0.07, 0.1, 0.2, 0.3, 0.4)},
    **{("TS", s): _SCHEDULE for s in ("linear schedule S3", "S0 (linear increase; endpoints not legible)", "S1", "S2", "S3")},
    **{("TS-cos", f"A{i} (cosine alternation; values not legible)"): _COSINE for i in (0, 1)},
    # TR changes only τ's parameterization: the rest is the baseline's.
    ("TR", "softplus"): ({**_LEARNED, "temperature.kind": "softplus"}, ()),
    **{
        ("TR", f"Scale{k} (tau = exp(theta/{k}))"): ({**_LEARNED, "temperature.kind": "exp_k", "temperature.k": float(k)}, ())
        for k in (2, 10)
    },
    # s = 0.1 is DESIGN.md's reading of the paper; Table 2 itself does not print it.
    ("SLRT", "temperature learning rate scaled down"): ({**_LEARNED, "temperature.lr_scale": 0.1}, ()),
    ("HS", "hard swap (p not legible in our copy)"): (_HARD, ("swap.p",)),
    **{("HS", f"p={p:g}"): ({**_HARD, "swap.p": p}, ()) for p in (1.0, 0.1, 0.01)},
    ("HS-row", "Hard Swap Feature (whole rows)"): ({**_LEARNED, "swap.kind": "hard_row"}, ("swap.p",)),
    # One λ per pair or per coordinate: the paper's wording does not settle it (config/sections.py).
    ("SS", "soft swap (p not legible in our copy)"): ({**_LEARNED, "swap.kind": "soft"}, ("swap.p", "swap.per")),
    ("no-norm", "Remove Normalization (T frozen)"): (
        {**_CLIP, "model.normalize": False, "temperature.kind": "fixed"},
        ("temperature.value",),
    ),
}


@lru_cache(maxsize=1)
def paper_tables() -> pl.DataFrame:
    """Every row of the paper's Tables 1–5: table, method, setting and the printed numbers."""
    return pl.read_csv(TABLES, schema_overrides={c: pl.Float64 for c in COLUMNS})


@dataclass(frozen=True)
class PaperMatch:
    """Where a configuration of one of the paper's methods stands against its tables.

    status: "matched" (a row states exactly this setting: `row` holds its numbers, to be compared),
    "not legible" (rows agree on all they state but leave a setting illegible: `row` holds the
    numbers when there is one such row, not to be differenced) or "unmatched" (the paper's rows of
    this method state other values: `row` is None). `reason` says why a row is not compared."""

    status: str
    row: dict | None
    reason: str = ""


def configuration_setting(config: dict) -> dict | None:
    """A resolved configuration's method settings as flat keys ("temperature.value": 0.04, …),
    defaults filled as the study file would; None for a theory trial or an empty configuration."""
    if not config or config.get("theory") is not None:
        return None
    temperature = config.get("temperature") or {}
    swap = config.get("swap") or {}
    setting = {"model.normalize": (config.get("model") or {}).get("normalize", True)}
    for section, given, default in (("temperature", temperature, "learned"), ("swap", swap, "none")):
        kind = given.get("kind", default)
        defaults = _defaults()[section].get(kind)
        if defaults is None:
            return None
        setting.update({f"{section}.{key}": value for key, value in {**defaults, **given, "kind": kind}.items()})
    return setting


def paper_match(config: dict) -> PaperMatch | None:
    """Where `config` stands against the paper's tables; None when it is none of the paper's
    methods (a theory trial, or a combination the paper did not run, e.g. a fixed T with a swap)."""
    ours = configuration_setting(config)
    if ours is None:
        return None
    loss = (config.get("loss") or {}).get("kind", "clip")
    if loss != "clip":
        return PaperMatch("unmatched", None, f"not in the paper: it trains with CLIP's loss only (loss.kind {loss})")
    exact, illegible, near = [], [], []
    for row, (stated, unknown) in _stated_rows():
        if set(ours) != set(stated) | set(unknown) or any(_differs(ours[k], v) for k, v in stated.items() if not _numeric(v)):
            continue  # another method
        differing = [k for k, v in stated.items() if _differs(ours[k], v)]
        if differing:
            near.append((row, stated, differing))
        elif unknown:
            illegible.append((row, unknown))
        else:
            exact.append(row)
    if exact:
        return PaperMatch("matched", _numbers(exact))
    if illegible:
        keys = ", ".join(dict.fromkeys(k for _, unknown in illegible for k in unknown))
        names = sorted(dict.fromkeys(_short(r["setting"]) for r, _ in illegible))
        if len(names) == 1:
            reason = f"not compared: our copy of the paper does not give this row's {keys}"
            return PaperMatch("not legible", _numbers([r for r, _ in illegible]), reason)
        reason = (
            f"not compared: our copy of the paper does not give the {keys} of its {illegible[0][0]['method']} rows ({', '.join(names)})"
        )
        return PaperMatch("not legible", None, reason)
    if not near:
        return None
    fewest = min(len(d) for _, _, d in near)
    nearest = [(r, s, d) for r, s, d in near if len(d) == fewest]
    nearest_keys = list(dict.fromkeys(k for _, _, d in nearest for k in d))
    parts = []
    for key in nearest_keys:
        theirs = sorted({s[key] for _, s, _ in nearest})
        parts.append(f"{key}={_text(ours[key])} (paper: {', '.join(_text(v) for v in theirs)})")
    methods = ", ".join(dict.fromkeys(r["method"] for r, _, _ in nearest))
    return PaperMatch("unmatched", None, f"not compared: no row of the paper at {'; '.join(parts)}; nearest: {methods}")


def paper_row(config: dict) -> dict | None:
    """The numbers of the paper's row that states exactly `config`'s setting, or None."""
    match = paper_match(config)
    return match.row if match is not None and match.status == "matched" else None


def setup_differences(config: dict) -> list[str]:
    """How `config`'s model and data differ from the paper's (RN50; MSCOCO; CIFAR-10 probes)."""
    data = config.get("data") or {}
    probe = data.get("probe", {})  # absent: the default synthetic probe; null: none
    ours = {
        "model.name": (config.get("model") or {}).get("name", ModelSpec.model_fields["name"].default),
        "data.train.kind": (data.get("train") or {}).get("kind", "synthetic"),
        "data.eval.kind": (data.get("eval") or {}).get("kind", "synthetic"),
        # Zero-shot and the linear probe only: no probe data, nothing of theirs to differ.
        "data.probe.kind": None if probe is None else (probe.get("test") or {}).get("kind", "synthetic"),
    }
    words = {"model.name": "model", "data.train.kind": "train data", "data.eval.kind": "eval data", "data.probe.kind": "probe data"}
    return [
        f"{words[key]} {ours[key]} (paper: {_SETUP_WORDS[theirs]})"
        for key, theirs in SETUP.items()
        if ours[key] is not None and ours[key] != theirs
    ]


# ------------------------------------------------------------------------------------ internals
@lru_cache(maxsize=1)
def _stated_rows() -> tuple[tuple[dict, tuple[dict, tuple[str, ...]]], ...]:
    """Each row of the tables with its stated settings (39 rows: a scan per configuration is cheap)."""
    rows = paper_tables().iter_rows(named=True)
    return tuple((row, STATED[(row["method"], row["setting"])]) for row in rows)


@lru_cache(maxsize=1)
def _defaults() -> dict[str, dict[str, dict]]:
    """Per section, each kind (the config's variants) → its fields' defaults, so a configuration
    written without them reads as the study file would resolve it."""
    out = {}
    for section, spec in (("temperature", TemperatureSpec), ("swap", SwapSpec)):
        variants = typing.get_args(typing.get_args(spec)[0])  # Annotated[Union[...], discriminator]
        out[section] = {
            v.model_fields["kind"].default: {n: f.default for n, f in v.model_fields.items() if not f.is_required()} for v in variants
        }
    return out


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value) -> str:
    return f"{value:g}" if _numeric(value) else str(value)


def _differs(ours, theirs) -> bool:
    """A numeric setting differs beyond REL_TOL, any other (a kind, a flag) when not equal."""
    if _numeric(ours) and _numeric(theirs):
        return not math.isclose(ours, theirs, rel_tol=REL_TOL)
    return ours != theirs


def _numbers(rows: list[dict]) -> dict:
    """Every metric from the first of Tables 3, 4, 5, 2 among `rows` (those report every metric),
    MMVP-VLM from Table 1's row among them, if any."""
    full = [r for t in (3, 4, 5, 2) for r in rows if r["table"] == t]
    mmvp = [r["mmvp_vlm"] for r in rows if r["table"] == 1 and r["mmvp_vlm"] is not None]
    return {**(full or rows)[0], "mmvp_vlm": mmvp[0] if mmvp else None}


def _short(setting: str) -> str:
    """A row's name without its remark: "linear schedule S3" and "S3" are both S3."""
    return setting.split(" (")[0].split()[-1]

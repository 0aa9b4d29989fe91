"""Search distributions: a one-key mapping at any leaf of a study file (`{loguniform: [lo, hi]}`, …)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from raygap.config.base import SpecError

DISTRIBUTION_KINDS = ("loguniform", "uniform", "int", "choice", "grid")


@dataclass(frozen=True)
class Distribution:
    """A searchable leaf. `default()` is what `raygap train` uses: the first choice or grid
    value, the midpoint of a uniform or int range, the geometric midpoint of a loguniform one."""

    kind: str
    args: tuple

    def default(self) -> Any:
        if self.kind in ("choice", "grid"):
            return self.args[0]
        low, high = self.args
        if self.kind == "loguniform":
            return math.sqrt(low * high)
        if self.kind == "int":
            return (low + high) // 2
        return (low + high) / 2

    def candidates(self) -> tuple:
        """Values that validation tries: every option, or both ends of a range."""
        return self.args


def parse_distribution(node: Any, where: str) -> Distribution | None:
    if not (isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DISTRIBUTION_KINDS):
        return None
    kind, args = next(iter(node.items()))
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise SpecError(f"{where}: {kind} needs a non-empty list of values, got {args!r}")
        return Distribution(kind, tuple(args))
    is_number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if not (isinstance(args, list) and len(args) == 2 and all(map(is_number, args)) and args[0] < args[1]):
        raise SpecError(f"{where}: {kind} needs [low, high] with low < high, got {args!r}")
    if kind == "loguniform" and args[0] <= 0:
        raise SpecError(f"{where}: loguniform needs 0 < low < high, got {args!r}")
    if kind == "int" and not all(isinstance(v, int) for v in args):
        raise SpecError(f"{where}: int needs two integers, got {args!r}")
    return Distribution(kind, tuple(args))


def find_distributions(raw: Any, file: str, prefix: str = "") -> dict[str, Distribution]:
    """Dotted path → Distribution for every search leaf in a raw study tree (outermost only)."""
    found: dict[str, Distribution] = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
            path = f"{prefix}{key}"
            dist = parse_distribution(value, f"{file}: {path}")
            if dist is not None:
                found[path] = dist
            else:
                found.update(find_distributions(value, file, path + "."))
    return found


def set_path(raw: dict, path: str, value: Any) -> None:
    """Set `value` at a dotted path, creating intermediate mappings (validation catches typos)."""
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value

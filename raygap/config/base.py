"""What every section model shares: strict models, the error type, number ranges, path checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(ge=1)]


class SpecError(ValueError):
    """A study file (or an override) that cannot run; the message names the file and the key."""


class Strict(BaseModel):
    # Field docstrings become descriptions: the docs' study-file reference is generated from them.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def check_paths(info: ValidationInfo) -> bool:
    """Paths are checked unless validation runs with context check_paths=False (dry runs)."""
    return not info.context or info.context.get("check_paths", True)


def must_exist(field: str, what: Literal["file", "folder"]):
    """A validator for a path field that must name an existing file or folder (unless dry)."""

    def check(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:  # an optional path left out
            return path
        found = path.is_file() if what == "file" else path.is_dir()
        if check_paths(info) and not found:
            raise ValueError(f"{what} not found: {path}")
        return path

    return field_validator(field)(classmethod(check))

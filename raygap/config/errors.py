"""Validation errors as lines that name the file, the key as written in YAML, and what was expected."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from raygap.config.sections import TrialConfig


def format_errors(error: ValidationError, tree: dict, file: str) -> str:
    lines = []
    for item in error.errors():
        path = _yaml_path(item["loc"], tree)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            known = _known_keys(path[:-1], tree)
            close = difflib.get_close_matches(str(path[-1]), known, n=1)
            message = f"unknown key; expected one of {', '.join(sorted(known))}" if known else "unknown key"
            if close:
                message += f" (did you mean {close[0]!r}?)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif not isinstance(item.get("input"), (dict, list)) and item["type"] not in ("union_tag_invalid", "value_error"):
            message += f" (got {item['input']!r})"
        where = ".".join(map(str, path))
        if not where and re.match(r"[a-z_]+(\.[a-z_]+)*: ", message):  # a check across sections names its own key
            lines.append(f"{file}: {message}")
        else:
            lines.append(f"{file}: {where or '<top level>'}: {message}")
    return "\n".join(lines)


def _yaml_path(loc: tuple, tree: Any) -> list:
    """Pydantic's location without the union tags it inserts, i.e. the path as written in YAML."""
    path, node = [], tree
    for key in loc:
        if isinstance(node, dict) and key in node:
            path.append(key)
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int):
            path.append(key)
            node = node[key] if key < len(node) else None
        elif not (isinstance(node, dict) and node.get("kind") == key):  # else: a union tag, not a key
            path.append(key)
            node = None
    return path


def _known_keys(path: list, tree: dict) -> list[str]:
    """Field names of the model that the mapping at `path` is validated against."""
    cls: type[BaseModel] | None = TrialConfig
    node: Any = tree
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        field_info = cls.model_fields.get(key) if cls else None
        cls = _model_for(field_info.annotation, node) if field_info else None
    return list(cls.model_fields) if cls else []


def _model_for(annotation: Any, node: Any) -> type[BaseModel] | None:
    models = [t for t in _flatten(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
    if len(models) == 1:
        return models[0]
    kind = node.get("kind") if isinstance(node, dict) else None
    for model in models:
        if kind in typing.get_args(model.model_fields["kind"].annotation):
            return model
    return None


def _flatten(annotation: Any) -> list:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _flatten(arg)]
    return [annotation]

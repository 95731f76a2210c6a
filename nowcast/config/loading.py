"""Reading configs: YAML files, ``--set section.key=value`` overrides, typed dataclasses.

:func:`build_dataclass` checks every key and type against a dataclass's annotations: an
unknown or mistyped key is a :class:`~nowcast.errors.ConfigError` that names it
(``model.filterz``). Shared by the experiment and the batch configs.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from nowcast.errors import ConfigError


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in the dataclass's form."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build_dataclass(tp, value, key)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {value!r} does not fit {type_name(tp)}"
        )
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, (datetime.date, datetime.datetime)):  # YAML reads bare dates as dates
            return value.isoformat()
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {type_name(tp)}")  # pragma: no cover


def build_dataclass(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown config key {full!r} (known here: {known})")
        kwargs[key] = coerce(value, hints[key], full)
    return cls(**kwargs)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"model.filters=[16,32]"`` -> ``(["model", "filters"], [16, 32])`` (value read as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = load_yaml_text(raw) if raw.strip() else None
    except ConfigError as exc:
        raise ConfigError(f"--set {item!r}: cannot parse value ({exc})") from None
    return path, value


def apply_overrides(values: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``values`` with each ``section.key=value`` applied."""
    out = copy.deepcopy(values)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(
                    f"line {line}: key {key!r} is given twice (first on line {seen[key]})"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML error as ``line L, column C: problem`` (one line)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    problem = " ".join(str(problem).split())
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        problem = f"{problem} (only plain YAML is read: no !!python or other tags)"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_yaml_text(text: str) -> Any:
    """Parse YAML (safe, duplicate keys refused); :class:`ConfigError` with line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(exc)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file: a config is YAML text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if "\x00" in text:
        raise ConfigError(f"{path} is not a text file: a config is YAML text")
    try:
        values = load_yaml_text(text) or {}
    except ConfigError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return values


_UNSET_VARIABLE = re.compile(r"\$(\w+|\{\w+\})")


def expand_path(entry: str) -> str:
    """A path as the user wrote it with ``~`` and ``$VARIABLE``/``${VARIABLE}`` expanded
    (URLs other than ``file://`` are kept); an unset variable is a :class:`ConfigError`."""
    if "://" in entry and not entry.startswith("file://"):
        return entry
    expanded = os.path.expanduser(os.path.expandvars(entry))
    unset = _UNSET_VARIABLE.search(expanded)
    if unset:
        name = unset.group(1).strip("{}")
        raise ConfigError(f"path {entry!r}: the environment variable {name} is not set")
    return expanded


def resolve_path(entry: str, base: Path) -> str:
    """``entry`` expanded (:func:`expand_path`); a relative one against ``base`` when it
    exists there (or a glob matches there), else as given (relative to the working folder)."""
    entry = expand_path(entry)
    if "://" in entry or Path(entry).is_absolute():
        return entry
    candidate = base / entry
    if candidate.exists() or (any(ch in entry for ch in "*?[") and list(base.glob(entry))):
        return os.path.normpath(candidate)
    return entry

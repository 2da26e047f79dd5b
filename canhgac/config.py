"""Typed YAML configuration.

A config section is a frozen-ish dataclass; :func:`load_section` turns parsed
YAML into it and reports the first problem as ``file: key.path: problem``.
Unknown keys are errors (a typo must not silently fall back to a default).
Strings of the form ``${NAME}`` or ``${NAME:-default}`` are read from the
environment so secrets need not sit in files.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from canhgac.errors import TOP_LEVEL, ConfigError
from canhgac.message import EMPTY, Message
from canhgac.timeutil import parse_duration

T = TypeVar("T")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Duration(float):
    """Seconds; accepts '30s', '15m', '2h', '7d' or a number in YAML."""


class Secret(str):
    """A string never printed by repr() or logged."""

    def __repr__(self) -> str:  # pragma: no cover - trivial
        return "Secret('***')"


def field_meta(doc: str = "", *, min: float | None = None, max: float | None = None) -> dict[str, Any]:
    return {"doc": doc, "min": min, "max": max}


_KINDS = (
    (bool, Message("boolean", "true/false")),
    (int, Message("integer", "số nguyên")),
    (float, Message("number", "số")),
    (str, Message("string", "chuỗi")),
    (list, Message("list", "danh sách")),
    (dict, Message("mapping", "ánh xạ khóa: giá trị")),
)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _KINDS:  # bool before int: True is an int too
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _expected(en: str, vi: str, value: Any) -> Message:
    return Message(f"expected {en}, got {{got}}", f"cần {vi}, đang là {{got}}",
                   got=_describe(value))


def _expand_env(value: str, source: str, path: str) -> str:
    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(source, path, Message("environment variable {name} is not set",
                                                "biến môi trường {name} chưa được đặt",
                                                name=name))

    return _ENV.sub(repl, value)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def convert(value: Any, tp: Any, source: str, path: str) -> Any:
    """Convert parsed YAML ``value`` to type ``tp`` or raise ConfigError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, source, path)
            except ConfigError as exc:
                errors.append(exc.problem)
        raise ConfigError(source, path, errors[0] if len(errors) == 1 else _either(errors))
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(source, path, Message(
                "must be one of {choices}, got {value!r}",
                "phải là một trong {choices}, đang là {value!r}", choices=choices, value=value))
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(source, path, _expected("a list", "một danh sách", value))
        (item_tp, *_) = get_args(tp) or (Any,)
        items = [convert(v, item_tp, source, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(source, path, _expected("a mapping", "một ánh xạ khóa: giá trị",
                                                      value))
        key_tp, val_tp = get_args(tp) or (str, Any)
        out = {}
        for k, v in value.items():
            out[convert(k, key_tp, source, _join(path, str(k)))] = convert(
                v, val_tp, source, _join(path, str(k))
            )
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return load_section(value, tp, source, path)
    if tp is Duration:
        if isinstance(value, str):
            value = _expand_env(value, source, path)
        try:
            return Duration(parse_duration(value))
        except (ValueError, TypeError) as exc:
            raise ConfigError(source, path, str(exc)) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, path, _expected("true or false", "true hoặc false", value))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, path, _expected("an integer", "một số nguyên", value))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, path, _expected("a number", "một số", value))
        return float(value)
    if tp in (str, Secret, Path):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(source, path, _expected("a string", "một chuỗi", value))
        text = _expand_env(str(value), source, path)
        return tp(text)
    raise ConfigError(source, path, f"unsupported type {tp!r}")  # pragma: no cover


def _either(problems: list[str]) -> Message:
    """Every way a value could have been right, each in the reader's language."""
    names = [f"{{p{i}}}" for i in range(len(problems))]
    return Message(" or ".join(names), " hoặc ".join(names),
                   **{f"p{i}": p for i, p in enumerate(problems)})


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return Message(" (did you mean {close!r}?)", " (có phải {close!r}?)",
                   close=close[0]) if close else EMPTY


def yaml_lines(text: str) -> dict[str, int]:
    """Key path ("systems[3].level") -> 1-based line, for messages about a YAML file."""
    out: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                sub = f"{path}.{k.value}" if path else str(k.value)
                out[sub] = k.start_mark.line + 1
                walk(v, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, f"{path}[{i}]")

    try:
        root = yaml.compose(text, Loader=StrictLoader)
    except yaml.YAMLError:
        return out
    if root is not None:
        walk(root, "")
    return out


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def load_section(data: Any, cls: type[T], source: str, path: str = "", *,
                 validate: bool = True) -> T:
    """Build dataclass ``cls`` from a YAML mapping, validating every key.

    ``validate=False`` skips the dataclass's own ``validate()`` (for callers that
    check the assembled whole themselves)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, path or TOP_LEVEL,
                          _expected("a mapping", "một ánh xạ khóa: giá trị", data))
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    aliases = {name.replace("_", "-"): name for name in fields}
    kwargs: dict[str, Any] = {}
    for raw_key, raw_value in data.items():
        key = str(raw_key)
        name = key if key in fields else aliases.get(key)
        if name is None:
            raise ConfigError(source, _join(path, key), Message(
                "unknown key{hint} (known keys: {known})",
                "khóa không hợp lệ{hint} (các khóa hợp lệ: {known})",
                hint=did_you_mean(key, fields), known=", ".join(sorted(fields))))
        sub = _join(path, key)
        value = convert(raw_value, hints[name], source, sub)
        meta = fields[name].metadata
        if isinstance(value, int | float) and not isinstance(value, bool):
            lo, hi = meta.get("min"), meta.get("max")
            if lo is not None and value < lo:
                raise ConfigError(source, sub, Message("must be at least {lo}, got {value}",
                                                       "phải từ {lo} trở lên, đang là {value}",
                                                       lo=lo, value=value))
            if hi is not None and value > hi:
                raise ConfigError(source, sub, Message("must be at most {hi}, got {value}",
                                                       "phải từ {hi} trở xuống, đang là {value}",
                                                       hi=hi, value=value))
        kwargs[name] = value
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and (
            f.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(source, _join(path, name), Message("is required", "bắt buộc phải có"))
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None) if validate else None
    if callable(check):
        problem = check()
        if problem:
            sub_path, message = problem if isinstance(problem, tuple) else ("", problem)
            raise ConfigError(source, _join(path, sub_path) if sub_path else path, message)
    return obj


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (YAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml_documents(path: str | Path) -> list[Any]:
    """Every document of a YAML file (``---`` separated), parsed strictly.

    Errors are ConfigErrors naming the file and, for syntax errors, the line and column.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "", Message("file not found", "không tìm thấy tệp")) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), "", Message("not UTF-8 text ({reason} at byte {at})",
                                              "không phải văn bản UTF-8 ({reason} ở byte {at})",
                                              reason=exc.reason, at=exc.start)) from None
    except OSError as exc:
        raise ConfigError(str(p), "", exc.strerror or str(exc)) from None
    try:
        return list(yaml.load_all(text, Loader=StrictLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Message("line {line}, column {column}", "dòng {line}, cột {column}",
                        line=mark.line + 1, column=mark.column + 1) if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(p), where, Message("invalid YAML: {problem}",
                                                 "YAML không hợp lệ: {problem}",
                                                 problem=problem)) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a single-document YAML file strictly (see read_yaml_documents)."""
    docs = read_yaml_documents(path)
    if len(docs) > 1:
        raise ConfigError(str(path), "", Message(
            "holds several YAML documents (---); expected one",
            "chứa nhiều tài liệu YAML (---); chỉ được có một"))
    return docs[0] if docs else None


def load_file(path: str | Path, cls: type[T]) -> T:
    return load_section(read_yaml(path), cls, str(path))


def to_plain(obj: Any) -> Any:
    """Dataclass config back to plain data (for `show` commands); secrets masked."""
    if isinstance(obj, Secret):
        return "***"
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj

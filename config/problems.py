"""How bad configuration is reported: one ConfigProblem per bad field, gathered into one ConfigError.

Also translates pydantic's validation errors into those problems (one readable line per field, with the allowed
keys or values), so that ``settings.py`` and ``symbols.py`` report their problems the same way.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ValidationError

DOCS_HINT = "See docs/configuration.md for every setting, its default and its allowed values."


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One bad value: where it came from (``source``), which field (``field``, may be empty) and what is wrong."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(Exception):
    """Configuration that cannot be used; the message lists every problem, grouped by where it came from."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        lines = [f"invalid configuration: {count} problem{'s' if count != 1 else ''}"]
        sources: dict[str, list[ConfigProblem]] = {}
        for problem in self.problems:
            sources.setdefault(problem.source, []).append(problem)
        for source, problems in sources.items():
            lines.append(f"  {source}:")
            lines.extend(f"    - {problem}" for problem in problems)
        lines.append(DOCS_HINT)
        return "\n".join(lines)


class FieldProblems(ValueError):
    """Raised by a validator that checks several fields at once; each entry is (field path, message).

    The field path is appended to the location of the model that raised it (``""`` means the model itself).
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in self.problems))


def show_value(value: object, limit: int = 60) -> str:
    """A short, quoted rendering of a bad input for an error message."""
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list | tuple):
        text = "a list"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_location(location: Iterable[str | int], *, upper_first: bool = False) -> str:
    """``("symbols", 1, "leverage")`` -> ``symbols[1].leverage``; ``upper_first`` uppercases a leading setting name."""
    text = ""
    for index, part in enumerate(location):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part.upper() if upper_first and index == 0 else part
            text += f".{name}" if text else name
    return text


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = options[0] if len(options) == 1 else next(
                (arg for arg in options if typing.get_origin(arg) or _is_model(arg)), options[0]
            )
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class found by walking ``path`` (field names, list indexes, dict keys) down from ``root``."""
    annotation: Any = root
    for part in path:
        annotation = _unwrap(annotation)
        if _is_model(annotation):
            field_name = _field_for_key(annotation, part)
            if field_name is not None:
                annotation = annotation.model_fields[field_name].annotation
            else:
                annotation = _extra_value_type(annotation)
                if annotation is None:
                    return None
            continue
        origin = typing.get_origin(annotation)
        arguments = typing.get_args(annotation)
        if origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int) and arguments:
            annotation = arguments[0]
        elif origin in (dict, Mapping) and len(arguments) == 2:
            annotation = arguments[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if _is_model(annotation) else None


def _extra_value_type(model: type[BaseModel]) -> Any:
    """The declared type of a model's extra values (``__pydantic_extra__: dict[str, X]``), else None."""
    if model.model_config.get("extra") != "allow":
        return None
    try:
        hints = typing.get_type_hints(model, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable hints just mean "no extra type"
        return None
    arguments = typing.get_args(hints.get("__pydantic_extra__"))
    return arguments[1] if len(arguments) == 2 else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts (the first alias when it has aliases, else the field name)."""
    keys = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            keys.append(str(alias.choices[0]))
        elif isinstance(alias, str):
            keys.append(alias)
        else:
            keys.append(name)
    return keys


def _field_for_key(model: type[BaseModel], key: str | int) -> str | None:
    if not isinstance(key, str):
        return None
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        names = {name}
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        if key.lower() in {candidate.lower() for candidate in names}:
            return name
    return None


_TYPE_MESSAGES = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "path_type": "must be a file or folder path",
}


def problems_from_validation_error(
    error: ValidationError,
    *,
    source: str,
    root: type[BaseModel],
    prefix: Sequence[str | int] = (),
    upper_first: bool = False,
    hidden_fields: frozenset[str] = frozenset(),
) -> list[ConfigProblem]:
    """Translate pydantic's errors into one readable :class:`ConfigProblem` per bad field.

    ``hidden_fields`` (lower-case top-level names) never have their input shown: they hold secrets.
    """
    problems: list[ConfigProblem] = []
    for item in error.errors(include_url=False):
        location = tuple(prefix) + tuple(item["loc"])
        context = item.get("ctx") or {}
        cause = context.get("error")
        if isinstance(cause, FieldProblems):
            for suffix, message in cause.problems:
                path = location + tuple(part for part in suffix.split(".") if part) if suffix else location
                problems.append(ConfigProblem(source, render_location(path, upper_first=upper_first), message))
            continue
        field = render_location(location, upper_first=upper_first)
        hide_input = bool(item["loc"]) and str(item["loc"][0]).lower() in hidden_fields
        message = _describe(item, root, hide_input=hide_input, upper_keys=upper_first and len(item["loc"]) == 1)
        problems.append(ConfigProblem(source, field, message))
    return problems


def _describe(item: Mapping[str, Any], root: type[BaseModel], *, hide_input: bool, upper_keys: bool) -> str:
    kind = item["type"]
    context = item.get("ctx") or {}
    got = "" if hide_input else f" (got {show_value(item.get('input'))})"
    if kind in ("value_error", "assertion_error") and context.get("error") is not None:
        return str(context["error"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        location = item["loc"]
        model = _model_at(root, location[:-1])
        if model is None:
            return "unknown key"
        keys = [key.upper() for key in allowed_keys(model)] if upper_keys else allowed_keys(model)
        unknown = str(location[-1])
        close = difflib.get_close_matches(unknown.lower(), [key.lower() for key in keys], n=1, cutoff=0.6)
        hint = ""
        if close:
            hint = f" (did you mean {next(key for key in keys if key.lower() == close[0])}?)"
        what = "setting" if upper_keys else "key"
        return f"unknown {what}{hint}; allowed {what}s: {', '.join(keys)}"
    if kind == "too_short":
        minimum = context.get("min_length", 1)
        return f"must have at least {minimum} entr{'y' if minimum == 1 else 'ies'}"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}{got}"
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind] + got
    return f"{item['msg']}{got}"

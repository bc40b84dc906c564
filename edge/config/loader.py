"""Load a YAML config: ${ENV} substitution, then pydantic validation, errors with dotted key paths."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edge.errors import ConfigError
from edge.files import read_bounded

ModelT = TypeVar("ModelT", bound=BaseModel)

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# Values a config may expand to. Aliases (*name) are shared when parsed but every use is walked and
# copied afterwards, so nine nested levels of nine aliases in 1 KB would expand to 387 million values.
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_BYTES = 2**20  # a config of a hundred assets is under 100 KB


def substitute_env(value: Any, source: str, loc: tuple[int | str, ...] = ()) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string value of parsed YAML.

    Done after parsing so that comments may mention ${...} and a value can never inject YAML.
    An unset variable without a default is an error naming the key that uses it; a document that
    expands (through aliases) to more than MAX_CONFIG_VALUES values is refused.
    """
    return _substitute(value, source, loc, [MAX_CONFIG_VALUES])


def _substitute(value: Any, source: str, loc: tuple[int | str, ...], budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{source}: the config expands to more than {MAX_CONFIG_VALUES} values; "
                          "are YAML aliases (*name) nested inside each other?")
    if isinstance(value, dict):
        return {key: _substitute(item, source, (*loc, key), budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, source, (*loc, index), budget) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None:
            return found
        if default is not None:
            return default
        raise ConfigError(
            f"{source}: {format_location(loc)}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}})"
        )

    return _ENV_PATTERN.sub(replace, value)


class _StrictLoader(yaml.SafeLoader):
    """``safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # merged keys may be overridden, as YAML intends; complex keys are refused below
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first on line {first_line[key]}, again on line {line})",
                    key_node.start_mark)
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def format_location(loc: tuple[int | str, ...], model: type[BaseModel] | None = None) -> str:
    """('assets', 0, 'sensors', 1, 'replay', 'rate_hz') -> 'assets[0].sensors[1].rate_hz'.

    With ``model``, the location is walked alongside the schema so that the tag pydantic
    inserts for a discriminated union (a value the user never wrote as a key) is dropped.
    """
    path, _ = _walk(loc, model)
    return path or "(top level)"


def _walk(loc: tuple[int | str, ...], model: type[BaseModel] | None) -> tuple[str, Any]:
    path = ""
    current: Any = model
    for part in loc:
        current = _strip_optional(current)
        tagged = _union_member(current, part)
        if tagged is not None:
            current = tagged
            continue
        if isinstance(part, int):
            path += f"[{part}]"
            args = getattr(current, "__args__", None)
            current = args[0] if args else None
            continue
        path += f".{part}" if path else str(part)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            current = field.annotation if field is not None else None
        elif getattr(current, "__origin__", None) is dict:
            current = current.__args__[1]
        else:
            current = None
    return path, _strip_optional(current)


def _strip_optional(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if args and type(None) in args and len(args) == 2:
        return next(arg for arg in args if arg is not type(None))
    return annotation


def _union_member(annotation: Any, tag: int | str) -> type[BaseModel] | None:
    """The member of a union of models whose ``type`` literal equals ``tag``."""
    if not isinstance(tag, str):
        return None
    for arg in getattr(annotation, "__args__", ()) or ():
        arg = getattr(arg, "__origin__", arg) if not isinstance(arg, type) else arg
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            field = arg.model_fields.get("type")
            if field is not None and tag in (getattr(field.annotation, "__args__", ()) or ()):
                return arg
    # Annotated[Union[...], Field(discriminator=...)] keeps the union in __origin__/__args__[0]
    inner = getattr(annotation, "__metadata__", None)
    if inner is not None:
        return _union_member(annotation.__origin__, tag)
    return None


def first_problem(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """The first problem pydantic found as 'where: what', for a one-sentence error about a document
    that is not a config file (a cloud answer, a labels file, a command-line setting)."""
    return _problem(error.errors()[0], model)


def _problem(item: Any, model: type[BaseModel] | None) -> str:
    return f"{format_location(tuple(item['loc']), model)}: {item['msg'].removeprefix('Value error, ')}"


def describe_validation_error(
    error: ValidationError, model: type[BaseModel], source: str
) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            where, _ = _walk(loc, model)
            _, parent = _walk(loc[:-1], model)
            allowed = list(parent.model_fields) if _is_model(parent) else []
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            lines.append(f"{where}: unknown key{suggestion}")
        else:
            lines.append(_problem(item, model))
    return f"{source}: invalid config:\n  " + "\n  ".join(lines)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def parse_yaml(text: str) -> Any:
    """YAML parsed safely, refusing a key given twice in one mapping; no ``${ENV}`` substitution."""
    return yaml.load(text, Loader=_StrictLoader)


def load_yaml(path: Path) -> Any:
    """Parse a config file with a strict SafeLoader (no duplicate keys), bounded in size, depth and expansion."""
    data = read_bounded(path, MAX_CONFIG_BYTES, "config file", ConfigError, "is it a config file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    try:
        return substitute_env(parse_yaml(text), str(path))
    except RecursionError as exc:
        raise ConfigError(f"{path}: the YAML is nested too deeply to be a config") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from exc


def load_model(path: Path, model: type[ModelT]) -> ModelT:
    """Read ``path`` and validate it as ``model``; every problem becomes one ConfigError."""
    return validate_model(load_mapping(path), model, path)


def load_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``, not validated yet (an empty file is an empty mapping)."""
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def validate_model(data: dict[str, Any], model: type[ModelT], path: Path, source: str | None = None) -> ModelT:
    """``data`` read from ``path`` (relative paths in it are taken from its folder) validated as ``model``;
    ``source`` names it in errors when it is more than that file."""
    try:
        return model.model_validate(data, context={"config_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model, source or str(path))) from exc

"""The one way configuration files are read: YAML into a typed (pydantic) model, errors that name
`file:line: field`, and a cache keyed by the file's modification time so long-lived processes
(the daemon, the webserver) see edits without re-parsing on every call."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from elt_platform.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def line_index(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line number."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(line_index(value, (*path, key.value)))
            lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(line_index(item, (*path, i)))
    return lines


def located(source: str, lines: dict[tuple, int], loc: tuple, message: str) -> str:
    """`source:line: a.b.c: message` for the deepest key path of `loc` that has a line."""
    line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), 1)
    field = ".".join(str(p) for p in loc) or "(document)"
    return f"{source}:{line}: {field}: {message}"


def parse_yaml(text: str, source: str, error: type[ConfigError] = ConfigError) -> tuple[Any, dict]:
    """(data, line index) of a YAML document; a syntax error names the file and line."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise error(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return data, (line_index(node) if node is not None else {})


def validate(
    model: type[M],
    data: Any,
    source: str,
    lines: dict[tuple, int],
    error: type[ConfigError] = ConfigError,
    *,
    prefix: tuple = (),
) -> M:
    """`model` from parsed data; the first validation error names file, line and field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{source}:{lines.get(prefix, 1)}: expected a mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise error(located(source, lines, (*prefix, *first["loc"]), message)) from None


# Checks a validated model cannot express field by field (e.g. a name referring to another
# section): (key path, message) pairs, reported at the line of the key path.
Problems = Callable[[Any], list[tuple[tuple, str]]]


def parse_model(
    text: str,
    model: type[M],
    source: str,
    error: type[ConfigError] = ConfigError,
    problems: Problems | None = None,
) -> M:
    """`model` from YAML text; every error names `source:line: field`."""
    data, lines = parse_yaml(text, source, error)
    parsed = validate(model, data, source, lines, error)
    for loc, message in problems(parsed) if problems else ():
        raise error(located(source, lines, loc, message))
    return parsed


@lru_cache(maxsize=32)
def _cached(path: str, stamp: tuple, model: type, error: type, problems) -> BaseModel:
    return parse_model(Path(path).read_text(), model, path, error, problems)


def load_model(
    path: Path,
    model: type[M],
    error: type[ConfigError] = ConfigError,
    problems: Problems | None = None,
) -> M:
    """The file at `path` as `model`; a missing file is an error naming it. Treat the result as
    read-only: it is shared by every caller until the file changes."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    return _cached(str(path), stamp, model, error, problems)  # type: ignore[return-value]

"""Reading reference YAML files safely: strict keys, impossible dates kept as text, bounded
nesting.

:func:`load_yaml` parses with :class:`StrictLoader` (a ``SafeLoader``: no Python tags) after
checking the nesting depth on the event stream (iterative, stops at the first level too deep),
so a 5,000-deep document is refused with its line instead of raising ``RecursionError``. An
impossible date such as ``2026-02-30`` stays a string: the caller's date check names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

import pydantic
import yaml

__all__ = [
    "MAX_DEPTH",
    "StrictLoader",
    "StrictModel",
    "YamlDataError",
    "load_reference",
    "load_yaml",
    "validate_reference",
    "validation_messages",
]

#: nesting levels (mappings and sequences) a reference file may use
MAX_DEPTH: Final = 32

_OPEN: Final = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE: Final = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class YamlDataError(ValueError):
    """The text is no usable YAML document (syntax, duplicate key, nesting); the message
    names the source and the line."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping (merge keys ``<<`` allowed) and
    keeps an impossible date (``2026-02-30``) as its text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=False)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable key: reported by the base class
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:  # matches the date pattern but is no date (day 30 of February)
            return self.construct_scalar(node)


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", StrictLoader.construct_yaml_timestamp)


def check_depth(text: str, *, source: str, max_depth: int = MAX_DEPTH) -> None:
    """:class:`YamlDataError` when ``text`` nests mappings/sequences deeper than
    ``max_depth`` (syntax errors are left to the loader)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, _OPEN):
                depth += 1
                if depth > max_depth:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise YamlDataError(
                        f"{source}: line {line}: nested deeper than {max_depth} levels"
                    )
            elif isinstance(event, _CLOSE):
                depth -= 1
    except yaml.YAMLError:
        return


def load_yaml(text: str, *, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """The document in ``text`` (see the module docstring); :class:`YamlDataError` naming
    ``source`` and the line otherwise."""
    check_depth(text, source=source, max_depth=max_depth)
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise YamlDataError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:  # aliases nesting beyond the checked depth
        raise YamlDataError(f"{source}: nested too deeply") from None


# -- typed reference files: one pydantic model per file format ------------------------------


class StrictModel(pydantic.BaseModel):
    """Base of the models of reference files: unknown keys are errors, values immutable."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=pydantic.BaseModel)


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _known_fields(model: type[pydantic.BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the (nested) model at ``loc`` (``[]`` when not a model)."""
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, pydantic.BaseModel)
        ):
            return []
        current = field.annotation
    return list(current.model_fields)


def validation_messages(
    exc: pydantic.ValidationError, model: type[pydantic.BaseModel]
) -> list[str]:
    """One line per problem of a reference file, each naming the field by its dotted path:
    unknown fields grouped per section (with the known ones), a missing section or value,
    and the model's own messages for the rest."""
    unknown: dict[tuple[int | str, ...], list[str]] = {}
    lines: list[str] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = _loc(loc)
        if error["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
        elif error["type"] in ("missing", "model_type", "dict_type"):
            nested = _known_fields(model, loc)
            lines.append(
                f"{where}: required section missing (fields: {', '.join(nested)})"
                if nested
                else f"{where}: required, missing or empty"
            )
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}" if where else message)
    for parent, names in unknown.items():
        known = ", ".join(_known_fields(model, parent))
        prefix = f"{_loc(parent)}: " if parent else ""
        lines.append(f"{prefix}unknown field(s) {', '.join(sorted(names))} (known: {known})")
    return lines


def validate_reference(data: Any, model: type[M], *, source: str) -> M:
    """``data`` (a parsed reference file) as ``model``; :class:`YamlDataError` naming
    ``source`` and every faulty field otherwise."""
    if not isinstance(data, Mapping):
        raise YamlDataError(
            f"{source}: expected a mapping with {', '.join(model.model_fields)}, "
            f"got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise YamlDataError(
            "; ".join(f"{source}: {line}" for line in validation_messages(exc, model))
        ) from None


def load_reference(text: str, model: type[M], *, source: str) -> M:
    """Parse a reference file strictly (:func:`load_yaml`) and validate it as ``model``
    (:func:`validate_reference`): the one loader of typed reference files."""
    return validate_reference(load_yaml(text, source=source), model, source=source)

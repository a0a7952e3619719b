"""Reading reference YAML files safely: strict keys, impossible dates kept as text, bounded
nesting.

:func:`load_yaml` parses with :class:`StrictLoader` (a ``SafeLoader``: no Python tags) after
checking the nesting depth on the event stream (iterative, stops at the first level too deep),
so a 5,000-deep document is refused with its line instead of raising ``RecursionError``. An
impossible date such as ``2026-02-30`` stays a string: the caller's date check names the field.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

__all__ = ["MAX_DEPTH", "StrictLoader", "YamlDataError", "load_yaml"]

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

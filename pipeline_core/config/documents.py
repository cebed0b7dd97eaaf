"""Parsing YAML/JSON definitions with bounds, for every way a definition comes in.

A definition is small: a few kilobytes of YAML. What is parsed here is bounded so that a
hostile or broken document costs a clear error, never a stack overflow or gigabytes:

- nesting at most :data:`MAX_DEPTH` levels (20,000 ``[`` would otherwise exhaust the
  parser's recursion);
- YAML aliases are allowed (anchors are a normal way to share config), but the document's
  size *with every alias expanded* — what is stored and served afterwards — is at most
  ``max_size`` characters, counted without expanding anything (a 600-byte alias bomb
  is refused instead of becoming megabytes);
- only plain data (``yaml.SafeLoader``): no Python objects; a mapping key given twice is
  an error, not a silent "last one wins".
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from pipeline_core.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_SIZE", "parse_document"]

MAX_DEPTH = 64
MAX_SIZE = 1024 * 1024


class _Bounded(yaml.SafeLoader):
    max_size = MAX_SIZE

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # a key given twice is a mistake (the second would silently win)
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > self.max_size:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"larger than {self.max_size:,} characters once its aliases are expanded",
                node.start_mark,
            )
        return node


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """Characters the node stands for, aliases expanded; memoised per node, so an alias
    bomb is measured in time linear in its *text*."""
    known = seen.get(id(node))
    if known is not None:
        return known
    seen[id(node)] = 0  # a recursive alias counts as nothing more (and cannot loop)
    if isinstance(node, yaml.ScalarNode):
        size = len(node.value) + 2
    elif isinstance(node, yaml.SequenceNode):
        size = 2 + sum(_expanded_size(n, seen) for n in node.value)
    else:
        size = 2 + sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    seen[id(node)] = size
    return size


def _depth(value: Any, limit: int) -> bool:
    """True when ``value`` nests at most ``limit`` levels."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            if d > limit:
                return False
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def parse_document(
    text: bytes | str, *, kind: str = "yaml", origin: str = "<document>", max_size: int = MAX_SIZE
) -> Any:
    """Parse a JSON (``kind="json"``) or YAML document; ConfigError naming ``origin`` and,
    for YAML, the line and column of the problem."""
    if kind == "json":
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{origin}: invalid JSON: {exc}") from None
        if not _depth(data, MAX_DEPTH):
            raise ConfigError(f"{origin}: invalid JSON: nested deeper than {MAX_DEPTH} levels")
        return data
    loader = _Bounded(text)
    loader.max_size = max_size
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {what}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ConfigError(f"{origin}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()

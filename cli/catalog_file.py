"""Reading a catalog file: UTF-8 on every platform, YAML or JSON, one document.

A key repeated within one mapping or object is refused (a parser would keep the last value
without a word), and so is nesting deeper than a catalog could need, which would otherwise
exhaust the parser's stack. YAML is built from the parser's events as they come, so a large
file takes time linear in its size and memory for its values only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import GeneratorType
from typing import Any, Protocol

import yaml

from domain.catalog import SECTIONS

# A catalog nests four levels (document, section, entry, field_aliases); the limit only has
# to be far below what the parsers' recursion allows.
MAX_DEPTH = 100

# libyaml where the installed PyYAML has it; both give the same events.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"


class CatalogFileError(ValueError):
    """A catalog file that cannot be read or parsed."""


class _Refused(Exception):
    """A document the reader will not take; the message says why and where."""


class _Mark(Protocol):
    line: int
    column: int


def load_catalog_file(path: str | Path) -> Mapping[str, object]:
    """The document in a YAML or JSON catalog file (`-` reads standard input)."""
    name = display_name(str(path))
    try:
        text = _read_text(str(path))
    except OSError as error:
        raise CatalogFileError(f"{name}: cannot read it: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CatalogFileError(f"{name}: not UTF-8 text") from None
    try:
        document = _json(text) if name.lower().endswith(".json") else _yaml(text)
    except json.JSONDecodeError as error:
        raise CatalogFileError(
            f"{name}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        where = _at(getattr(error, "problem_mark", None))
        raise CatalogFileError(f"{name}: malformed YAML: {problem}{where}") from None
    except _Refused as error:
        raise CatalogFileError(f"{name}: {error}") from None
    except RecursionError:
        raise CatalogFileError(f"{name}: {_too_deep(None)}") from None
    if document is None:
        raise CatalogFileError(f"{name}: the file is empty")
    if not isinstance(document, dict):
        raise CatalogFileError(
            f"{name}: the catalog must be a mapping with the sections {', '.join(SECTIONS)}"
        )
    return document


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _read_text(path: str) -> str:
    """UTF-8 whatever the locale says (Windows reads pipes as its code page); a BOM is dropped."""
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream standing in for stdin has already decoded
            return sys.stdin.read()
        data: bytes = stream.read()
    else:
        data = Path(path).read_bytes()
    return data.decode("utf-8-sig")


def _at(mark: _Mark | None) -> str:
    return "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"


def _too_deep(mark: _Mark | None) -> _Refused:
    return _Refused(f"nested more than {MAX_DEPTH} levels deep{_at(mark)}")


def _duplicate(key: object, where: str) -> _Refused:
    shown = f'"{key}"' if isinstance(key, str) else repr(key)
    return _Refused(f"duplicate key {shown}{where}: keep one of them")


def _malformed(problem: str, mark: _Mark | None) -> _Refused:
    return _Refused(f"malformed YAML: {problem}{_at(mark)}")


# --- JSON ------------------------------------------------------------------------------


def _json(text: str) -> object:
    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        mapping = dict(pairs)
        if len(mapping) != len(pairs):
            # json.loads knows no positions: find the first repeated key again, with its own.
            raise _first_json_duplicate(text)
        return mapping

    document = json.loads(text, object_pairs_hook=unique)
    if _deeper_than(document, MAX_DEPTH):
        raise _too_deep(None)
    return document


def _deeper_than(value: object, limit: int) -> bool:
    level: list[object] = [value]
    for _ in range(limit):
        below: list[object] = []
        for container in level:
            if isinstance(container, dict):
                below.extend(v for v in container.values() if isinstance(v, dict | list))
            elif isinstance(container, list):
                below.extend(v for v in container if isinstance(v, dict | list))
        if not below:
            return False
        level = below
    return True


_JSON_STRUCTURE = re.compile(r'["{}\[\]]')
_JSON = json.JSONDecoder()
_JSON_NAME_SEPARATOR = re.compile(r"[ \t\n\r]*:")


def _first_json_duplicate(text: str) -> _Refused:
    """The first key repeated within one object of `text`, where json.loads found one: the
    text up to the object holding it is valid JSON."""
    open_objects: list[set[str] | None] = []  # the keys seen so far; None for an array
    position = 0
    while (token := _JSON_STRUCTURE.search(text, position)) is not None:
        start = token.start()
        position = start + 1
        if token.group() == '"':
            string, position = _JSON.raw_decode(text, start)
            keys = open_objects[-1] if open_objects else None
            if keys is None or not _JSON_NAME_SEPARATOR.match(text, position):
                continue
            if string in keys:
                line = text.count("\n", 0, start) + 1
                column = start - text.rfind("\n", 0, start)
                return _duplicate(string, f" at line {line}, column {column}")
            keys.add(string)
        elif token.group() in "{[":
            open_objects.append(set() if token.group() == "{" else None)
        else:
            open_objects.pop()
    raise AssertionError("json.loads found a repeated key")


# --- YAML ------------------------------------------------------------------------------


_MERGE_KEY = object()  # the `<<` key: its value's mappings are merged into its mapping


@dataclass(slots=True)
class _OpenMapping:
    value: dict[object, object] = field(default_factory=dict)
    has_key: bool = False  # a key waits for its value
    key: object = None
    key_mark: _Mark | None = None
    merged: list[dict[object, object]] | None = None  # least precedent first

    def add(self, item: object, mark: _Mark | None) -> None:
        """`item` is the value of the key before it, or the next key."""
        if self.has_key:
            self.has_key = False
            if self.key is not _MERGE_KEY:
                self.value[self.key] = item
                return
            merged = [item] if isinstance(item, dict) else item
            if not isinstance(merged, list) or not all(isinstance(m, dict) for m in merged):
                raise _malformed("<< merges a mapping or a list of mappings", self.key_mark)
            self.merged = list(reversed(merged))  # the first one listed wins
            return
        try:
            repeated = item in self.value or (item is _MERGE_KEY and self.merged is not None)
        except TypeError:
            raise _malformed("a list or mapping cannot be a key", mark) from None
        if repeated:
            raise _duplicate("<<" if item is _MERGE_KEY else item, _at(mark))
        self.has_key, self.key, self.key_mark = True, item, mark

    def built(self) -> dict[object, object]:
        """Its own keys over those of the mappings it merges."""
        if self.merged is None:
            return self.value
        value: dict[object, object] = {}
        for merged in self.merged:
            value.update(merged)
        value.update(self.value)
        return value


def _yaml(text: str) -> object:
    loader = _Loader(text)
    try:
        return _YamlBuilder(loader).document()
    except yaml.MarkedYAMLError as error:
        # libyaml's own nesting limit (1,000 flow levels) can trip while it scans ahead.
        if error.problem == "exceeded maximum nesting depth":
            raise _too_deep(error.problem_mark) from None
        raise
    finally:
        loader.dispose()


class _YamlBuilder:
    """The values of one YAML document, as `yaml.safe_load` gives them, built event by event."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self._resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = loader.resolve
        self._anchors: dict[str, object] = {}
        # The collections being built, innermost last, each with the anchor it will define.
        self._open: list[tuple[list[object] | _OpenMapping, str | None]] = []
        self._document: object = None

    def document(self) -> object:
        documents = 0
        for event in iter(self._loader.get_event, None):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _malformed("expected a single document, found another", event.start_mark)
            elif isinstance(event, yaml.ScalarEvent):
                self._add(self._scalar(event), event.anchor, event.start_mark)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in self._anchors:
                    raise _malformed(f"found undefined alias {event.anchor!r}", event.start_mark)
                self._place(self._anchors[event.anchor], event.start_mark)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                if len(self._open) >= MAX_DEPTH:
                    raise _too_deep(event.start_mark)
                is_mapping = isinstance(event, yaml.MappingStartEvent)
                if event.tag not in (None, "!", _MAP if is_mapping else _SEQ):
                    raise _malformed(f"the tag {event.tag} is not supported here", event.start_mark)
                self._open.append((_OpenMapping() if is_mapping else [], event.anchor))
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                node, anchor = self._open.pop()
                value = node.built() if isinstance(node, _OpenMapping) else node
                self._add(value, anchor, event.end_mark)
        return self._document

    def _scalar(self, event: yaml.ScalarEvent) -> object:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(yaml.ScalarNode, event.value, event.implicit)
        top = self._open[-1][0] if self._open else None
        if tag == _STR:
            return event.value
        if tag == _MERGE and isinstance(top, _OpenMapping) and not top.has_key:
            return _MERGE_KEY
        start: Any = event.start_mark  # libyaml's marks stand in for PyYAML's
        node = yaml.ScalarNode(tag, event.value, start, start, event.style)
        constructors: dict[str | None, Callable[[Any, yaml.Node], object]]
        constructors = type(self._loader).yaml_constructors
        try:
            value = constructors.get(tag, constructors[None])(self._loader, node)
            if isinstance(value, GeneratorType):  # a collection's constructor: it raises
                generator = value
                value = next(generator)
                for _ in generator:
                    pass
        except yaml.YAMLError:
            raise
        except Exception:  # PyYAML's scalar constructors fail on a value their tag rejects
            raise _malformed(f"{event.value!r} is not a valid {tag}", start) from None
        return value

    def _add(self, value: object, anchor: str | None, mark: _Mark | None) -> None:
        if anchor is not None:
            if anchor in self._anchors:
                raise _malformed(f"found duplicate anchor {anchor!r}", mark)
            self._anchors[anchor] = value
        self._place(value, mark)

    def _place(self, value: object, mark: _Mark | None) -> None:
        if not self._open:
            self._document = value
        elif isinstance(top := self._open[-1][0], list):
            top.append(value)
        else:
            top.add(value, mark)

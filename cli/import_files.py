"""The rows of a lead file for `leads import`: CSV with a header row, or JSON Lines, streamed.

Each row becomes the posted fields of one lead, numbered by the line it starts on. A row that
cannot be read (ragged, bad quoting, not UTF-8, not a JSON object) is a `BadRow` carrying the
`invalid_request` error it gets; only a file that cannot be read at all is a `LeadFileError`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from json import JSONDecodeError
from typing import TYPE_CHECKING, BinaryIO

from domain.errors import InvalidRequest
from domain.posted import merge_fields, parse_json

if TYPE_CHECKING:
    from _csv import Reader

FORMATS = ("csv", "jsonl")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Longer JSON lines are skipped unread, in pieces of this size (memory stays bounded).
_SKIP_CHUNK = 1 << 16


class LeadFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, no header row)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One lead's posted fields; `line` is the line number the row starts on."""

    line: int
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that is rejected before it becomes a command."""

    line: int
    error: InvalidRequest


def format_of(name: str, given: str | None) -> str:
    """The file's format: `given` (from --format), else from the file name's extension."""
    if given is not None:
        return given
    if name == "-":
        raise LeadFileError("give the format of standard input: --format csv or --format jsonl")
    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot > name.rfind("/") else ""
    if suffix not in _SUFFIXES:
        raise LeadFileError(
            f"cannot tell the format from the extension {suffix or '(none)'}: "
            "name it .csv or .jsonl, or pass --format csv|jsonl"
        )
    return _SUFFIXES[suffix]


def read_rows(
    stream: BinaryIO, file_format: str, max_row_bytes: int
) -> Generator[Row | BadRow, None, None]:
    """The rows of `stream`, one at a time (constant memory whatever the file's size).

    `max_row_bytes` bounds one row as the HTTP body limit bounds one request.
    """
    if file_format == "csv":
        return _csv_rows(stream, max_row_bytes)
    return _jsonl_rows(stream, max_row_bytes)


def _csv_rows(stream: BinaryIO, max_row_bytes: int) -> Generator[Row | BadRow, None, None]:
    # Undecodable bytes become lone surrogates (which valid UTF-8 never yields), so one bad
    # byte rejects its row, not the file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_records(csv.reader(text, strict=True), max_row_bytes)
    finally:
        text.detach()  # leave the caller's stream (maybe standard input) open


def _csv_records(reader: Reader, max_row_bytes: int) -> Iterator[Row | BadRow]:
    names = _header(reader)
    start = 2
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield BadRow(
                start, InvalidRequest(f"The row is not valid CSV: {error}.", reason="malformed_csv")
            )
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not cells:
            continue  # a blank line
        if len(cells) != len(names):
            yield BadRow(line, _ragged(len(cells), len(names)))
        elif _undecodable(cells):
            yield BadRow(line, _not_utf8())
        elif sum(map(len, cells)) > max_row_bytes:
            yield BadRow(line, _too_large(max_row_bytes))
        else:
            try:
                yield Row(line, _cell_fields(names, cells))
            except InvalidRequest as error:
                yield BadRow(line, error)


def _header(reader: Reader) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty: a CSV file starts with a header row") from None
    except csv.Error as error:
        raise LeadFileError(f"line 1: the header row is not valid CSV: {error}") from None
    if not header:
        raise LeadFileError("line 1 is blank: a CSV file starts with a header row of field names")
    if _undecodable(header):
        raise LeadFileError("line 1: the header row is not UTF-8 text")
    return [name.strip() for name in header]


def _cell_fields(names: list[str], cells: list[str]) -> dict[str, object]:
    # An empty cell is a field the row does not have: every row of a CSV file has every
    # column, so "absent" can only be written as an empty cell.
    return merge_fields({}, ((name, cell) for name, cell in zip(names, cells, strict=True) if cell))


def _undecodable(cells: Iterable[str]) -> bool:
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _jsonl_rows(stream: BinaryIO, max_row_bytes: int) -> Generator[Row | BadRow, None, None]:
    line = 0
    while True:
        raw = stream.readline(max_row_bytes + 1)
        if not raw:
            return
        line += 1
        if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
            _skip_rest_of_line(stream)
            yield BadRow(line, _too_large(max_row_bytes))
            continue
        if line == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue  # blank lines separate nothing in JSON Lines: skipped
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield BadRow(line, _not_utf8())
            continue
        try:
            yield Row(line, parse_json(text))
        except InvalidRequest as error:
            yield BadRow(line, _json_line_error(error))


def _skip_rest_of_line(stream: BinaryIO) -> None:
    while chunk := stream.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return


def _json_line_error(error: InvalidRequest) -> InvalidRequest:
    reason = error.details.get("reason")
    cause = error.__cause__
    if reason == "malformed_json":
        where = (
            f": {cause.msg} at column {cause.colno}" if isinstance(cause, JSONDecodeError) else ""
        )
        return InvalidRequest(f"The line is not valid JSON{where}.", reason="malformed_json")
    if reason == "not_an_object":
        return InvalidRequest("The line is not a JSON object.", reason="not_an_object")
    return error


def _ragged(cells: int, columns: int) -> InvalidRequest:
    return InvalidRequest(
        f"The row has {cells} cells but the header has {columns} columns.",
        reason="ragged_row",
    )


def _not_utf8() -> InvalidRequest:
    return InvalidRequest("The row is not UTF-8 text.", reason="not_utf8")


def _too_large(limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"The row is larger than {limit} bytes.", reason="body_too_large", limit=limit
    )

"""The rows of a lead file for `leads import` (CSV with a header row, or JSON Lines), streamed:
a row that cannot be read is a `BadRow`, a file that cannot be read a `LeadFileError`."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import stat
from collections import deque
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from json import JSONDecodeError
from typing import IO, TYPE_CHECKING, BinaryIO, TextIO

from domain.errors import InvalidRequest
from domain.posted import merge_fields, parse_json

if TYPE_CHECKING:
    from _csv import Reader

    from _typeshed import WriteableBuffer

FORMATS = ("csv", "jsonl")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Longer lines are skipped unread, in pieces of this size (memory stays bounded).
_SKIP_CHUNK = 1 << 16
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class LeadFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, no header row)."""


class FileChanged(LeadFileError):
    """The file was truncated or rewritten while it was read: what follows is not its rows."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # where the row starts
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    error: InvalidRequest


def format_of(name: str, given: str | None) -> str:
    if given is not None:
        return given
    if name == "-":
        raise LeadFileError("give the format of standard input: --format csv or --format jsonl")
    base = os.path.basename(name)  # a dot in a folder name is no extension (`\\` on Windows)
    dot = base.rfind(".")
    suffix = base[dot:].lower() if dot >= 0 else ""
    if suffix not in _SUFFIXES:
        raise LeadFileError(
            f"cannot tell the format from the extension {suffix or '(none)'}: "
            "name it .csv or .jsonl, or pass --format csv|jsonl"
        )
    return _SUFFIXES[suffix]


def read_rows(
    stream: BinaryIO, file_format: str, max_row_bytes: int
) -> Generator[Row | BadRow, None, None]:
    """The rows of `stream`, one at a time; a row is at most `max_row_bytes`, as a body is."""
    opened = regular_file(stream)
    checked = stream if opened is None else io.BufferedReader(_Unchanged(stream, opened))
    rows = _csv_rows if file_format == "csv" else _jsonl_rows
    return rows(checked, max_row_bytes)


def _csv_rows(stream: BinaryIO, limit: int) -> Generator[Row | BadRow, None, None]:
    # Undecodable bytes become lone surrogates (which valid UTF-8 never yields), so one bad
    # byte rejects its row, not the file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        lines = _PhysicalLines(text, limit)
        reader = csv.reader(lines, strict=True)
        names = _header(reader, limit)
        while True:
            lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _Unreadable as unreadable:
                yield unreadable.row
                continue
            except csv.Error as error:
                yield lines.give_back(
                    InvalidRequest(f"The row is not valid CSV: {error}.", reason="malformed_csv")
                )
                continue
            line = lines.record[0].number
            if not cells:
                continue  # a blank line
            try:
                if len(cells) != len(names):
                    raise InvalidRequest(
                        f"The row has {len(cells)} cells but the header has {len(names)} columns.",
                        reason="ragged_row",
                    )
                if _undecodable(cells):
                    raise _not_utf8()
                # An empty cell is a field the row does not have: every row of a CSV file has
                # every column, so "absent" can only be written as an empty cell.
                pairs = ((name, cell) for name, cell in zip(names, cells, strict=True) if cell)
                row: Row | BadRow = Row(line, merge_fields({}, pairs))
            except InvalidRequest as error:
                row = BadRow(line, error)
            yield row
    finally:
        text.detach()  # leave the caller's stream (maybe standard input) open


def _header(reader: Reader, limit: int) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty: a CSV file starts with a header row") from None
    except _Unreadable as unreadable:
        problem = "is not valid CSV: a quoted name is not closed"
        if unreadable.row.error.details["reason"] == "body_too_large":
            problem = f"is larger than {limit} bytes"
        raise LeadFileError(f"line 1: the header row {problem}") from None
    except csv.Error as error:
        raise LeadFileError(f"line 1: the header row is not valid CSV: {error}") from None
    if not header:
        raise LeadFileError("line 1 is blank: a CSV file starts with a header row of field names")
    if _undecodable(header):
        raise LeadFileError("line 1: the header row is not UTF-8 text")
    return [name.strip() for name in header]


class _Unreadable(Exception):
    """A record too large, or whose quoted cell is never closed: `csv.reader` never gets it."""

    def __init__(self, row: BadRow) -> None:
        self.row = row


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str | None  # with its line ending; None when the line is over the row limit
    size: int  # bytes, without the line ending
    ending: int  # bytes of the line ending


class _PhysicalLines:
    """The file's physical lines for `csv.reader`, numbered, a record at most `limit` bytes.
    A record that cannot be read gives back its lines but the first, read again: a stray
    quote costs one row, not the rest of the file."""

    def __init__(self, text: TextIO, limit: int) -> None:
        self.limit = limit
        self._text = text
        self._lines_read = 0
        self._after_cr = False
        self._again: deque[_Line] = deque()
        self.record: list[_Line] = []
        self._record_bytes = 0

    def start_record(self) -> None:
        self.record.clear()
        self._record_bytes = 0

    def give_back(self, error: InvalidRequest) -> BadRow:
        """The record is a bad row: its lines after the first are read again."""
        self._again.extendleft(reversed(self.record[1:]))
        return BadRow(self.record[0].number, error)

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        # csv.reader asks for a line within a record only while a quoted cell is open.
        line = self._again.popleft() if self._again else self._from_file()
        if line is None:
            if not self.record:
                raise StopIteration
            raise self._unclosed("before the end of the file")
        if self.record and self._record_bytes + line.size > self.limit:
            self._again.appendleft(line)  # it is read again, as a record of its own
            raise self._unclosed(f"within {self.limit} bytes", limit=self.limit)
        if line.text is None:
            raise _Unreadable(BadRow(line.number, _too_large(self.limit)))
        self.record.append(line)
        self._record_bytes += line.size + line.ending
        return line.text

    def _unclosed(self, where: str, **limit: int) -> _Unreadable:
        error = InvalidRequest(
            f"The row's quoted cell is not closed {where}.", reason="unclosed_quote", **limit
        )
        return _Unreadable(self.give_back(error))

    def _from_file(self) -> _Line | None:
        # A line of `limit` characters and its line ending fit in one read: a longer one is
        # over the limit (a character is at least a byte), and its rest is skipped unread.
        whole = self.limit + 2
        chunk = self._readline(whole)
        if not chunk:
            return None
        self._lines_read += 1
        body = chunk.rstrip("\r\n")
        ending = len(chunk) - len(body)
        if not ending and len(chunk) == whole:
            while (rest := self._readline(_SKIP_CHUNK)) and not rest.endswith(("\n", "\r")):
                pass
            return _Line(self._lines_read, None, self.limit + 1, 0)
        size = len(body) if body.isascii() else len(body.encode("utf-8", "surrogateescape"))
        return _Line(self._lines_read, chunk if size <= self.limit else None, size, ending)

    def _readline(self, size: int) -> str:
        chunk = self._text.readline(size)
        if self._after_cr and chunk == "\n":
            # A read that stops between the two characters of "\r\n" returns the "\n" next.
            chunk = self._text.readline(size)
        self._after_cr = chunk.endswith("\r")
        return chunk


def regular_file(stream: IO[bytes]) -> os.stat_result | None:
    """The status of `stream` when it is a regular file (not a pipe, a terminal or no file)."""
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError):  # not a file at all (io.UnsupportedOperation is both)
        return None
    return status if stat.S_ISREG(status.st_mode) else None


class _Unchanged(io.RawIOBase):
    """A regular file that raises FileChanged once its size or modification time changes: its
    next bytes are not the file's, and a short read would look like its end."""

    def __init__(self, stream: BinaryIO, opened: os.stat_result) -> None:
        self._stream = stream
        self._opened = opened

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        data = self._stream.read(len(view))
        now = os.fstat(self._stream.fileno())
        opened = self._opened
        if (now.st_size, now.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns):
            raise FileChanged(
                f"the file shrank from {opened.st_size} to {now.st_size} bytes while it was read"
                if now.st_size < opened.st_size
                else f"the file was modified while it was read "
                f"({opened.st_size} bytes when opened, {now.st_size} bytes now)"
            )
        view[: len(data)] = data
        return len(data)


def _undecodable(cells: Iterable[str]) -> bool:
    return any(map(_LONE_SURROGATE.search, cells))


def _jsonl_rows(stream: BinaryIO, limit: int) -> Generator[Row | BadRow, None, None]:
    for line in itertools.count(1):
        raw = stream.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := stream.readline(_SKIP_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield BadRow(line, _too_large(limit))
            continue
        if line == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if not raw.strip():
            continue  # blank lines separate nothing in JSON Lines: skipped
        try:
            row: Row | BadRow = Row(line, parse_json(raw.decode("utf-8").rstrip("\r\n")))
        except UnicodeDecodeError:
            row = BadRow(line, _not_utf8())
        except InvalidRequest as error:
            row = BadRow(line, _json_line_error(error))
        yield row


def _json_line_error(error: InvalidRequest) -> InvalidRequest:
    reason = error.details.get("reason")
    if reason == "malformed_json":
        where = ""
        if isinstance(cause := error.__cause__, JSONDecodeError):
            where = f": {cause.msg} at column {cause.colno}"
        return InvalidRequest(f"The line is not valid JSON{where}.", reason="malformed_json")
    if reason == "not_an_object":
        return InvalidRequest("The line is not a JSON object.", reason="not_an_object")
    return error


def _not_utf8() -> InvalidRequest:
    return InvalidRequest("The row is not UTF-8 text.", reason="not_utf8")


def _too_large(limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"The row is larger than {limit} bytes.", reason="body_too_large", limit=limit
    )

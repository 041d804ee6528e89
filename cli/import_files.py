"""The rows of a lead file for `leads import`: CSV with a header row, or JSON Lines, streamed.

Each row becomes the posted fields of one lead, numbered by the line it starts on. A row that
cannot be read (ragged, bad quoting, not UTF-8, not a JSON object) is a `BadRow` carrying the
`invalid_request` error it gets; only a file that cannot be read at all, or that changes while
it is read, is a `LeadFileError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from json import JSONDecodeError
from typing import TYPE_CHECKING, BinaryIO, TextIO

from domain.errors import InvalidRequest
from domain.posted import merge_fields, parse_json

if TYPE_CHECKING:
    from _csv import Reader

    from _typeshed import WriteableBuffer

FORMATS = ("csv", "jsonl")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Longer JSON lines are skipped unread, in pieces of this size (memory stays bounded).
_SKIP_CHUNK = 1 << 16
_LINE_ENDS = ("\n", "\r")


class LeadFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, no header row)."""


class FileChanged(LeadFileError):
    """The file was truncated or rewritten while it was read: what follows is not its rows."""


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
    checked = _checked(stream)
    if file_format == "csv":
        return _csv_rows(checked, max_row_bytes)
    return _jsonl_rows(checked, max_row_bytes)


def _csv_rows(stream: BinaryIO, max_row_bytes: int) -> Generator[Row | BadRow, None, None]:
    # Undecodable bytes become lone surrogates (which valid UTF-8 never yields), so one bad
    # byte rejects its row, not the file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_records(_PhysicalLines(text, max_row_bytes))
    finally:
        text.detach()  # leave the caller's stream (maybe standard input) open


def _csv_records(lines: _PhysicalLines) -> Iterator[Row | BadRow]:
    reader = csv.reader(lines, strict=True)
    names = _header(reader, lines.limit)
    while True:
        lines.start_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _LineTooLong as long:
            yield BadRow(long.line, _too_large(lines.limit))
            continue
        except (_Unclosed, csv.Error) as error:
            line = lines.record_start
            lines.give_back()
            yield BadRow(line, _unreadable(error))
            continue
        line = lines.record_start
        if not cells:
            continue  # a blank line
        if len(cells) != len(names):
            yield BadRow(line, _ragged(len(cells), len(names)))
        elif _undecodable(cells):
            yield BadRow(line, _not_utf8())
        else:
            try:
                yield Row(line, _cell_fields(names, cells))
            except InvalidRequest as error:
                yield BadRow(line, error)


def _header(reader: Reader, limit: int) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise LeadFileError("the file is empty: a CSV file starts with a header row") from None
    except _LineTooLong:
        raise LeadFileError(f"line 1: the header row is larger than {limit} bytes") from None
    except _Unclosed:
        raise LeadFileError(
            "line 1: the header row is not valid CSV: a quoted name is not closed"
        ) from None
    except csv.Error as error:
        raise LeadFileError(f"line 1: the header row is not valid CSV: {error}") from None
    if not header:
        raise LeadFileError("line 1 is blank: a CSV file starts with a header row of field names")
    if _undecodable(header):
        raise LeadFileError("line 1: the header row is not UTF-8 text")
    return [name.strip() for name in header]


class _LineTooLong(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Unclosed(Exception):
    """The record's quoted cell is still open at the row limit (`limit`) or the end (None)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str | None  # with its line ending; None when the line is over the row limit
    size: int  # bytes, without the line ending
    ending: int  # bytes of the line ending


class _PhysicalLines:
    """The file's physical lines for `csv.reader`, numbered, a record at most `limit` bytes.

    The lines of the record being read are kept (at most the limit) so that a record that
    cannot be read gives back all its lines but the first: reading resumes on the line after
    the one the bad row starts on, and a stray quote costs one row, not the rest of the file.
    """

    def __init__(self, text: TextIO, limit: int) -> None:
        self.limit = limit
        self._text = text
        self._lines_read = 0
        self._after_cr = False
        self._again: deque[_Line] = deque()
        self._record: list[_Line] = []
        self._record_bytes = 0

    @property
    def record_start(self) -> int:
        return self._record[0].number

    def start_record(self) -> None:
        self._record.clear()
        self._record_bytes = 0

    def give_back(self) -> None:
        self._again.extendleft(reversed(self._record[1:]))
        self.start_record()

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        # csv.reader asks for a line within a record only while a quoted cell is open.
        line = self._again.popleft() if self._again else self._from_file()
        if line is None:
            if self._record:
                raise _Unclosed(None)
            raise StopIteration
        if self._record and self._record_bytes + line.size > self.limit:
            self._again.appendleft(line)  # it is read again, as a record of its own
            raise _Unclosed(self.limit)
        if line.text is None:
            raise _LineTooLong(line.number)
        self._record.append(line)
        self._record_bytes += line.size + line.ending
        return line.text

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
            while (rest := self._readline(_SKIP_CHUNK)) and not rest.endswith(_LINE_ENDS):
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


def _checked(stream: BinaryIO) -> BinaryIO:
    """`stream`, checked after each read when it is a regular file: truncated or rewritten
    under the reader, its next bytes are not the file's, and a short read would look like
    its end. Pipes and terminals have nothing to check."""
    try:
        opened = os.fstat(stream.fileno())
    except (OSError, ValueError):  # not a file at all (io.UnsupportedOperation is both)
        return stream
    if not stat.S_ISREG(opened.st_mode):
        return stream
    return io.BufferedReader(_Unchanged(stream, opened))


class _Unchanged(io.RawIOBase):
    """Reads a regular file, raising FileChanged when its size or modification time is no
    longer what they were when it was opened (bytes read before the change are handed on)."""

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
        if (now.st_size, now.st_mtime_ns) == (opened.st_size, opened.st_mtime_ns):
            view[: len(data)] = data
            return len(data)
        if now.st_size < opened.st_size:
            raise FileChanged(
                f"the file shrank from {opened.st_size} to {now.st_size} bytes while it was read"
            )
        raise FileChanged(
            f"the file was modified while it was read "
            f"({opened.st_size} bytes when opened, {now.st_size} bytes now)"
        )


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


def _unreadable(error: Exception) -> InvalidRequest:
    if not isinstance(error, _Unclosed):
        return InvalidRequest(f"The row is not valid CSV: {error}.", reason="malformed_csv")
    if error.limit is None:
        return InvalidRequest(
            "The row's quoted cell is not closed before the end of the file.",
            reason="unclosed_quote",
        )
    return InvalidRequest(
        f"The row's quoted cell is not closed within {error.limit} bytes.",
        reason="unclosed_quote",
        limit=error.limit,
    )


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

"""Reading lead files for `leads import`: CSV and JSON Lines rows, line numbers, bad rows."""

from __future__ import annotations

import io
import ntpath
import os
from pathlib import Path

import pytest

from cli.import_files import BadRow, FileChanged, LeadFileError, Row, format_of, read_rows

LIMIT = 65536


def rows(data: bytes, file_format: str = "csv", limit: int = LIMIT) -> list[Row | BadRow]:
    return list(read_rows(io.BytesIO(data), file_format, limit))


def summary(data: bytes, file_format: str = "csv", limit: int = LIMIT) -> list[tuple[int, object]]:
    """(line, fields) for good rows, (line, reason) for bad ones."""
    return [
        (row.line, row.fields) if isinstance(row, Row) else (row.line, row.error.details["reason"])
        for row in rows(data, file_format, limit)
    ]


def test_csv_rows_are_the_header_s_fields_with_empty_cells_left_out() -> None:
    data = b"email,phone,utm_campaign\r\na@example.com,,spring\r\n,4155550100,\r\n"
    assert summary(data) == [
        (2, {"email": "a@example.com", "utm_campaign": "spring"}),
        (3, {"phone": "4155550100"}),
    ]


def test_csv_accepts_a_byte_order_mark_and_trims_header_names() -> None:
    data = "\ufeff email , Source_Key\nb@example.com,k1\n".encode()
    assert summary(data) == [(2, {"email": "b@example.com", "Source_Key": "k1"})]


def test_csv_line_is_where_a_record_starts_and_blank_lines_are_skipped() -> None:
    data = b'email,note\na@x.com,"two\nlines"\n\nb@x.com,"three\n\nlines"\nc@x.com,x'
    assert summary(data) == [
        (2, {"email": "a@x.com", "note": "two\nlines"}),
        (5, {"email": "b@x.com", "note": "three\n\nlines"}),
        (8, {"email": "c@x.com", "note": "x"}),
    ]


def test_csv_ragged_rows_are_rejected_and_reading_goes_on() -> None:
    data = b"email,phone\na@x.com\nb@x.com,1,2\nc@x.com,3\n"
    result = rows(data)
    assert summary(data) == [
        (2, "ragged_row"),
        (3, "ragged_row"),
        (4, {"email": "c@x.com", "phone": "3"}),
    ]
    bad = result[0]
    assert isinstance(bad, BadRow)
    assert bad.error.code == "invalid_request"
    assert bad.error.message == "The row has 1 cells but the header has 2 columns."


def test_csv_bad_quoting_is_rejected_and_reading_goes_on() -> None:
    data = b'email,phone\na@x.com,"41"55\nb@x.com,1\n'
    result = rows(data)
    assert summary(data) == [(2, "malformed_csv"), (3, {"email": "b@x.com", "phone": "1"})]
    assert isinstance(result[0], BadRow)
    assert result[0].error.message == "The row is not valid CSV: ',' expected after '\"'."


def test_csv_unterminated_quote_at_the_end_is_a_bad_row() -> None:
    assert summary(b'email,phone\na@x.com,1\nb@x.com,"2\n') == [
        (2, {"email": "a@x.com", "phone": "1"}),
        (3, "unclosed_quote"),
    ]


def test_csv_a_quote_never_closed_rejects_its_row_and_the_lines_after_it_are_read() -> None:
    data = b'email,note\na@x.com,"oops\nb@x.com,fine\nc@x.com,fine\n'
    result = rows(data)
    assert summary(data) == [
        (2, "unclosed_quote"),
        (3, {"email": "b@x.com", "note": "fine"}),
        (4, {"email": "c@x.com", "note": "fine"}),
    ]
    assert isinstance(result[0], BadRow)
    assert result[0].error.message == (
        "The row's quoted cell is not closed before the end of the file."
    )


def test_csv_a_quote_not_closed_within_the_row_limit_costs_one_row() -> None:
    lines = b"".join(b"lead%d@example.com,fine\n" % i for i in range(3, 1000))
    data = b'email,note\na@x.com,"oops\n' + lines + b'z@x.com,"closed, at last"\n'
    result = rows(data, limit=1024)
    bad = result[0]
    assert isinstance(bad, BadRow)
    assert (bad.line, bad.error.details) == (2, {"reason": "unclosed_quote", "limit": 1024})
    assert bad.error.message == "The row's quoted cell is not closed within 1024 bytes."
    assert result[1:-1] == [
        Row(line, {"email": f"lead{line}@example.com", "note": "fine"}) for line in range(3, 1000)
    ]
    assert result[-1] == Row(1000, {"email": "z@x.com", "note": "closed, at last"})


def test_csv_a_row_badly_quoted_over_several_lines_costs_its_first_line_only() -> None:
    # The stray quote at line 2 is closed by the quoted cell of line 3, and the "f" after that
    # quote is the error: line 3 is read again, on its own.
    data = b'email,note\na@x.com,"oops\nb@x.com,"fine"\nc@x.com,x\n'
    assert summary(data) == [
        (2, "malformed_csv"),
        (3, {"email": "b@x.com", "note": "fine"}),
        (4, {"email": "c@x.com", "note": "x"}),
    ]


def test_csv_a_multi_line_cell_within_the_limit_is_one_row() -> None:
    note = "\n".join(["n" * 30] * 20)
    data = f'email,note\na@x.com,"{note}"\nb@x.com,x\n'.encode()
    assert summary(data, limit=len(note) + 10) == [
        (2, {"email": "a@x.com", "note": note}),
        (22, {"email": "b@x.com", "note": "x"}),
    ]
    assert summary(data, limit=len(note))[0] == (2, "unclosed_quote")


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_csv_lines_over_the_limit_are_skipped_and_the_next_line_keeps_its_number(
    ending: bytes,
) -> None:
    # 49 and 50 bytes fit a limit of 50 with any line ending; 51 does not.
    rows_in = [b"a@x.com," + b"n" * (size - 8) for size in (49, 50, 51, 52, 5000)]
    data = ending.join([b"email,note", *rows_in, b"b@x.com,short"]) + ending
    assert [line for line, _ in summary(data, limit=50)] == [2, 3, 4, 5, 6, 7]
    assert [field for _, field in summary(data, limit=50)][2:5] == ["body_too_large"] * 3
    assert summary(data, limit=50)[-1] == (7, {"email": "b@x.com", "note": "short"})


def test_csv_undecodable_bytes_reject_their_row_only() -> None:
    data = b"email,first_name\na@x.com,Ren\xe9\nb@x.com,Ren\xc3\xa9\n"
    assert summary(data) == [(2, "not_utf8"), (3, {"email": "b@x.com", "first_name": "René"})]


def test_csv_a_column_given_twice_must_agree() -> None:
    data = b"email,email\na@x.com,a@x.com\na@x.com,b@x.com\n"
    assert summary(data) == [(2, {"email": "a@x.com"}), (3, "conflicting_values")]


def test_csv_rows_over_the_limit_are_rejected() -> None:
    data = b"email,note\na@x.com," + b"n" * 100 + b"\nb@x.com,short\n"
    assert summary(data, limit=50) == [
        (2, "body_too_large"),
        (3, {"email": "b@x.com", "note": "short"}),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty: a CSV file starts with a header row"),
        (b"\nemail\n", "line 1 is blank: a CSV file starts with a header row of field names"),
        (b"em\xffail\na@x.com\n", "line 1: the header row is not UTF-8 text"),
        (b'"email\n', "line 1: the header row is not valid CSV: a quoted name is not closed"),
        (b"e" * (LIMIT + 1) + b"\n", f"line 1: the header row is larger than {LIMIT} bytes"),
    ],
)
def test_csv_without_a_usable_header_is_a_file_error(data: bytes, message: str) -> None:
    with pytest.raises(LeadFileError) as raised:
        rows(data)
    assert str(raised.value) == message


def test_csv_with_only_a_header_has_no_rows() -> None:
    assert rows(b"email,phone\n") == []


def test_csv_is_streamed_not_read_whole() -> None:
    data = b"email\n" + b"".join(b"lead%d@example.com\n" % i for i in range(100_000))
    stream = io.BytesIO(data)
    reader = read_rows(stream, "csv", LIMIT)
    assert next(reader) == Row(2, {"email": "lead0@example.com"})
    assert stream.tell() <= 64 * 1024 < len(data)


def test_reading_csv_leaves_the_stream_open() -> None:
    stream = io.BytesIO(b"email\na@x.com\n")
    list(read_rows(stream, "csv", LIMIT))
    assert not stream.closed


def test_jsonl_rows_are_objects_and_blank_lines_are_skipped() -> None:
    data = b'{"email": "a@x.com", "phone": 4155550100}\n\n  \r\n{"Email": "b@x.com", "x": [1]}'
    assert summary(data, "jsonl") == [
        (1, {"email": "a@x.com", "phone": 4155550100}),
        (4, {"Email": "b@x.com", "x": [1]}),
    ]


def test_jsonl_accepts_a_byte_order_mark() -> None:
    assert summary(b'\xef\xbb\xbf{"email": "a@x.com"}\n', "jsonl") == [(1, {"email": "a@x.com"})]


@pytest.mark.parametrize(
    ("line", "reason", "message"),
    [
        (
            b'{"email": "a@x.com"',
            "malformed_json",
            "The line is not valid JSON: Expecting ',' delimiter at column 20.",
        ),
        (b'["a@x.com"]', "not_an_object", "The line is not a JSON object."),
        (b'"a@x.com"', "not_an_object", "The line is not a JSON object."),
        (b'{"phone": NaN}', "malformed_json", "The line is not valid JSON."),
        (b'{"email": "a\xff"}', "not_utf8", "The row is not UTF-8 text."),
        (
            b'{"email": "a", "email": "b"}',
            "conflicting_values",
            "The field 'email' was given twice with different values.",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep", "The JSON body is nested too deeply."),
    ],
)
def test_jsonl_bad_lines_are_rejected_and_reading_goes_on(
    line: bytes, reason: str, message: str
) -> None:
    result = rows(
        b'{"email": "first@x.com"}\n' + line + b'\n{"email": "last@x.com"}\n', "jsonl", 1 << 20
    )
    assert [row.line for row in result] == [1, 2, 3]
    bad = result[1]
    assert isinstance(bad, BadRow)
    assert (bad.error.code, bad.error.details["reason"], bad.error.message) == (
        "invalid_request",
        reason,
        message,
    )
    assert result[2] == Row(3, {"email": "last@x.com"})


def test_jsonl_lines_over_the_limit_are_skipped_unread() -> None:
    data = b'{"note": "' + b"n" * 500 + b'"}\n{"email": "a@x.com"}\n'
    assert summary(data, "jsonl", limit=100) == [(1, "body_too_large"), (2, {"email": "a@x.com"})]


def test_jsonl_a_line_exactly_at_the_limit_is_read() -> None:
    line = b'{"email": "a@x.com"}'
    assert summary(line + b"\n", "jsonl", limit=len(line) + 1) == [(1, {"email": "a@x.com"})]


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("leads.csv", None, "csv"),
        ("LEADS.CSV", None, "csv"),
        ("dir.v2/leads.jsonl", None, "jsonl"),
        ("leads.ndjson", None, "jsonl"),
        ("leads.txt", "csv", "csv"),
        ("-", "jsonl", "jsonl"),
    ],
)
def test_format_comes_from_the_option_else_the_extension(
    name: str, given: str | None, expected: str
) -> None:
    assert format_of(name, given) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("-", "give the format of standard input: --format csv or --format jsonl"),
        (
            "leads.txt",
            "cannot tell the format from the extension .txt: "
            "name it .csv or .jsonl, or pass --format csv|jsonl",
        ),
        (
            "dir.csv/leads",
            "cannot tell the format from the extension (none): "
            "name it .csv or .jsonl, or pass --format csv|jsonl",
        ),
    ],
)
def test_unknown_format_is_a_file_error(name: str, message: str) -> None:
    with pytest.raises(LeadFileError) as raised:
        format_of(name, None)
    assert str(raised.value) == message


def test_a_windows_folder_with_a_dot_gives_no_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "path", ntpath)  # as on Windows, where `\\` separates folders
    assert format_of("C:\\exports.v2\\leads.csv", None) == "csv"
    with pytest.raises(LeadFileError, match=r"extension \(none\)"):
        format_of("C:\\exports.csv\\leads", None)


def big_file(path: Path, file_format: str, rows: int = 20_000) -> Path:
    with path.open("w", encoding="utf-8") as out:
        if file_format == "csv":
            out.write("email,note\n")
        for i in range(rows):
            line = (
                f"lead{i}@example.com,n" if file_format == "csv" else f'{{"email": "l{i}@x.com"}}'
            )
            out.write(line + "\n")
    return path


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_a_file_truncated_while_it_is_read_is_an_error_not_its_end(
    tmp_path: Path, file_format: str
) -> None:
    path = big_file(tmp_path / f"leads.{file_format}", file_format)
    size = path.stat().st_size
    with path.open("rb") as stream:
        reader = read_rows(stream, file_format, LIMIT)
        read = [next(reader) for _ in range(10)]
        os.truncate(path, size // 2 + 3)  # mid-line: its first half must not become a row
        with pytest.raises(FileChanged) as raised:
            read.extend(reader)
    assert str(raised.value) == (
        f"the file shrank from {size} to {size // 2 + 3} bytes while it was read"
    )
    # The rows read before the truncation, whole, and then none: reading stopped at the
    # first read after it, far from the cut.
    if file_format == "csv":
        whole = [Row(i + 2, {"email": f"lead{i}@example.com", "note": "n"}) for i in range(20_000)]
    else:
        whole = [Row(i + 1, {"email": f"l{i}@x.com"}) for i in range(20_000)]
    assert read == whole[: len(read)]
    assert len(read) < 20_000 // 10


def test_a_file_rewritten_in_place_while_it_is_read_is_an_error(tmp_path: Path) -> None:
    path = big_file(tmp_path / "leads.csv", "csv")
    size = path.stat().st_size
    with path.open("rb") as stream:
        reader = read_rows(stream, "csv", LIMIT)
        next(reader)
        with path.open("r+b") as writer:  # same size, other bytes: only the time tells
            writer.seek(size // 2)
            writer.write(b"X")
        os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
        with pytest.raises(FileChanged) as raised:
            list(reader)
    assert str(raised.value) == (
        f"the file was modified while it was read ({size} bytes when opened, {size} bytes now)"
    )


def test_a_file_deleted_while_it_is_read_is_read_to_its_end(tmp_path: Path) -> None:
    path = big_file(tmp_path / "leads.jsonl", "jsonl", rows=5_000)
    with path.open("rb") as stream:
        reader = read_rows(stream, "jsonl", LIMIT)
        next(reader)
        try:
            path.unlink()
        except PermissionError:  # Windows keeps an open file
            pytest.skip("an open file cannot be deleted here")
        assert len(list(reader)) == 4_999

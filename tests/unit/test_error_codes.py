"""One table of error codes (`ErrorCode`): the HTTP answers and the OpenAPI responses are
derived from it, and every reason the code gives a client is one it lists."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from domain import errors
from domain.errors import ErrorCode, LeadError
from domain.replies import SERVED, render
from infrastructure import database_problems
from tests.support import ROOT
from web.app import create_app
from web.errors import error_response

OPENAPI: dict[str, Any] = create_app().openapi()
INGEST_OPERATIONS = [
    OPENAPI["paths"][path]["post"] for path in ("/api/leads", "/api/leads/{subpath}")
]
# Answers to requests that reach no operation, so that no operation lists them.
NOT_AN_OPERATION = {ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_is_answered_with_the_status_of_the_table(code: ErrorCode) -> None:
    response = error_response(code, "A message.")
    assert response.status_code == code.status
    assert orjson.loads(response.body)["error"]["code"] == code.value


def _listed_codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"]["application/json"]["schema"]
    codes: list[str] = schema["properties"]["error"]["properties"]["code"]["enum"]
    return codes


def test_every_error_response_lists_its_codes() -> None:
    for path in OPENAPI["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    codes = _listed_codes(response)
                    assert codes and all(ErrorCode(code).status == int(status) for code in codes)


@pytest.mark.parametrize("operation", INGEST_OPERATIONS, ids=lambda o: o["operationId"])
def test_the_ingest_operations_list_every_code_they_can_answer(operation: dict[str, Any]) -> None:
    listed = [
        ErrorCode(code)
        for status, response in operation["responses"].items()
        if int(status) >= 400
        for code in _listed_codes(response)
    ]
    assert sorted(listed) == sorted(set(ErrorCode) - NOT_AN_OPERATION)
    for code in listed:
        assert (
            f"`{code}`: {code.explained}" in operation["responses"][str(code.status)]["description"]
        )


# --- the reasons --------------------------------------------------------------------------

ERROR_TYPES = {
    name: value.code
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, LeadError)
}
# Reasons of answers that no client reads (it closed the connection) or can cause (no route
# of the service takes parameters FastAPI validates).
UNSEEN = {
    (ErrorCode.INVALID_REQUEST, "client_disconnected"),
    (ErrorCode.INVALID_REQUEST, "validation"),
}


def _code_of(call: ast.Call) -> ErrorCode | None:
    """The code of `InvalidSource(...)`-like calls and of `error_response(ErrorCode.X, ...)`
    (or `_refuse(protocol, ErrorCode.X, ...)`)."""
    function = call.func
    if not isinstance(function, ast.Name):
        return None
    if function.id in ERROR_TYPES:
        return ERROR_TYPES[function.id]
    if function.id not in ("error_response", "error_body", "_refuse"):
        return None
    for argument in call.args[:2]:
        if (
            isinstance(argument, ast.Attribute)
            and isinstance(argument.value, ast.Name)
            and argument.value.id == "ErrorCode"
        ):
            return ErrorCode[argument.attr]
    return None


def _reasons_of(call: ast.Call) -> Iterator[str]:
    """`reason="…"` keywords, and `"reason": "…"` items of a details dict argument."""
    for keyword in call.keywords:
        if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
            yield keyword.value.value
    for argument in call.args:
        if isinstance(argument, ast.Dict):
            for key, value in zip(argument.keys, argument.values, strict=True):
                reason = isinstance(key, ast.Constant) and key.value == "reason"
                if reason and isinstance(value, ast.Constant):
                    yield value.value


def given_reasons() -> set[tuple[ErrorCode, str]]:
    """Every (code, reason) the service's code gives a client (the import's own are its own)."""
    given: set[tuple[ErrorCode, str]] = set()
    for package in ("domain", "commands", "handlers", "queries", "infrastructure", "web"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and (code := _code_of(node)) is not None:
                    given.update((code, reason) for reason in _reasons_of(node))
    return given


def test_the_scan_finds_reasons_given_both_ways() -> None:
    given = given_reasons()
    assert (ErrorCode.INVALID_SOURCE, "malformed") in given  # InvalidSource(reason=...)
    assert (ErrorCode.INVALID_REQUEST, "malformed_http") in given  # _refuse(..., {...})
    assert (ErrorCode.SERVICE_UNAVAILABLE, "concurrency_limit") in given  # error_body(...)


def test_every_reason_given_is_in_the_table() -> None:
    undocumented = {
        (code.value, reason)
        for code, reason in given_reasons() - UNSEEN
        if reason not in code.reasons
    }
    assert undocumented == set()


def test_the_reasons_readyz_diagnoses_are_in_the_table() -> None:
    # /readyz answers with the reason of the problem it diagnosed, a variable the scan skips.
    problems = {
        database_problems.AUTHENTICATION_FAILED,
        database_problems.DATABASE_MISSING,
        database_problems.SCHEMA_NOT_MIGRATED,
        database_problems.SCHEMA_OUT_OF_DATE,
        database_problems.UNREACHABLE,
    }
    assert problems <= set(ErrorCode.SERVICE_UNAVAILABLE.reasons)


@pytest.mark.parametrize("operation", INGEST_OPERATIONS, ids=lambda o: o["operationId"])
def test_every_answer_is_documented_in_each_served_media_type(operation: dict[str, Any]) -> None:
    for status, response in operation["responses"].items():
        assert list(response["content"]) == list(SERVED), status
        root = "error" if int(status) >= 400 else "lead"
        for media in ("application/xml", "text/xml"):
            assert response["content"][media]["schema"]["xml"] == {"name": root}
    created = operation["responses"]["201"]["content"]
    as_json = created["application/json"]["example"]
    assert created["text/plain"]["example"] == render("text/plain", as_json, "lead").decode()
    assert created["application/xml"]["example"].startswith("<?xml")
    assert "`Accept`" in operation["description"] and "`reply_format`" in operation["description"]

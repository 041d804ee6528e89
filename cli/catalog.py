"""`leads catalog apply|export|check|docs`: the classification catalog.

`apply` is a command (through the command bus); `export`, `check` and `docs` are queries.
Output is UTF-8 whatever the platform's code page, so an export redirected to a file applies
back anywhere.

Exit status: 0 done, 1 `check` found an ambiguous mapping, 2 bad input or nothing done.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections.abc import Callable

import yaml

from cli.catalog_docs import posting_instructions
from cli.catalog_file import CatalogFileError, display_name
from cli.catalog_file import load_catalog_file as load_catalog_file
from cli.shared import execute
from commands.catalog import ApplyCatalog, CatalogApplied
from domain.catalog import CatalogError
from domain.catalog_plan import ACTIONS, AmbiguousMapping
from infrastructure.settings import Settings
from queries.catalog import CheckCatalog, DescribeSource, ExportCatalog


def register(catalog: argparse.ArgumentParser) -> None:
    catalog.description = "The classification catalog on DATABASE_URL."
    actions = catalog.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = actions.add_parser(
        "apply",
        help="create or update the entries of a YAML/JSON catalog file (never deletes)",
    )
    apply.add_argument("file", metavar="FILE", help="catalog file (.yaml, .yml, .json; - = stdin)")
    apply.add_argument(
        "--dry-run", action="store_true", help="print what would change and write nothing"
    )
    apply.add_argument(
        "--allow-ambiguous",
        action="store_true",
        help="apply even if a hostname and path prefix ends up held by several active sources "
        "(posts there get 409), with a warning naming them",
    )
    apply.set_defaults(run=_apply)
    export = actions.add_parser(
        "export", help="print the stored catalog as YAML (source keys included)"
    )
    export.set_defaults(run=_export)
    check = actions.add_parser(
        "check", help="report ambiguous mappings (exit 1) and active entries that take no leads"
    )
    check.set_defaults(run=_check)
    docs = actions.add_parser("docs", help="print posting instructions for one source")
    docs.add_argument("source_code", metavar="SOURCE_CODE")
    docs.add_argument(
        "--base-url",
        help="where the service answers, for the generic URL; its scheme is used for the "
        "mapped URLs (default: http://localhost:8000, mapped URLs in https)",
    )
    docs.set_defaults(run=_docs)


def _reports_errors(action: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Prints the one-line reason of a bad catalog file or entry on stderr and exits 2;
    `cli.main` does the same for a database it cannot use."""

    def run(args: argparse.Namespace) -> int:
        # Files and pipes get UTF-8: Windows would write its code page (cp1252), which cannot
        # hold every name and which `apply` does not read back. Its console takes UTF-8 too.
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower() != "utf-8":
                stream.reconfigure(encoding="utf-8", errors=stream.errors)
        try:
            return action(args)
        except (CatalogError, CatalogFileError) as error:
            message = str(error)
            if isinstance(error, CatalogError) and getattr(args, "file", None):
                message = f"{display_name(args.file)}: {message}"
            if isinstance(error, AmbiguousMapping):
                message += (
                    "; nothing was written: give each source its own hostname or path_prefix, "
                    "or deactivate all but one (--allow-ambiguous applies it anyway)"
                )
            print(f"leads: {message}", file=sys.stderr)
        return 2

    return run


def summary(applied: CatalogApplied) -> str:
    plan = applied.plan
    created, updated, unchanged = (plan.count(action) for action in ACTIONS)
    if applied.dry_run:
        return (
            f"dry run: {created} to create, {updated} to update, {unchanged} unchanged; "
            "nothing was written"
        )
    return f"catalog applied: {created} created, {updated} updated, {unchanged} unchanged"


@_reports_errors
def _apply(args: argparse.Namespace) -> int:
    document = load_catalog_file(args.file)
    command = ApplyCatalog(document, dry_run=args.dry_run, allow_ambiguous=args.allow_ambiguous)
    applied = asyncio.run(execute(command))
    for change in applied.plan.changes:
        if change.action == "unchanged" and not applied.dry_run:
            continue
        verb: str = change.action
        if verb != "unchanged":
            verb = f"would {verb}" if applied.dry_run else f"{verb}d"  # created, updated
        fields = f" ({', '.join(change.changed_fields)})" if change.changed_fields else ""
        print(f"{verb} {change.kind} {change.subject}{fields}")
    print(summary(applied))
    for ambiguity in applied.plan.ambiguities:
        print(f"leads: warning: {ambiguity}", file=sys.stderr)
    return 0


@_reports_errors
def _export(_: argparse.Namespace) -> int:
    document = asyncio.run(execute(ExportCatalog()))
    sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return 0


@_reports_errors
def _check(_: argparse.Namespace) -> int:
    report = asyncio.run(execute(CheckCatalog()))
    for problem in report.problems:
        print(f"{problem.severity}: {problem.message}")
    if report.problems:
        print(f"catalog check: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    else:
        print("catalog check: no problems found")
    return 1 if report.has_ambiguity else 0


@_reports_errors
def _docs(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    description = asyncio.run(execute(DescribeSource(args.source_code), settings))
    sys.stdout.write(posting_instructions(description, args.base_url, settings.max_body_bytes))
    return 0

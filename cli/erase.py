"""`leads erase`: a person's data, by email or phone number, or old leads' data, by age.

Exit status: 0 leads erased (or, with --dry-run, found), 1 none matched, 2 bad input or a
database problem, 130 interrupted (what was erased stays erased; run it again for the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta

from cli.shared import execute
from commands.erase_contact import EraseContact
from domain.erasure import ErasureError

_AGE = re.compile(r"(\d+)([dh])")
_DEFAULTS = EraseContact()


def register(erase: argparse.ArgumentParser) -> None:
    erase.description = (
        "Erase the personal data of the leads that match: contact fields and their normalized "
        "forms, consent text and evidence URLs, attributes, client IP and User-Agent. The lead "
        "id, its bindings, status and timestamps stay; one audit row per run (lead_erasures)."
    )
    which = erase.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", metavar="ADDRESS", help="leads with this email (any case)")
    which.add_argument(
        "--phone", metavar="NUMBER", help="leads with this phone number (any formatting)"
    )
    which.add_argument(
        "--older-than",
        metavar="AGE",
        type=_age,
        help="leads received more than AGE ago: a number of days (90d) or hours (12h)",
    )
    erase.add_argument(
        "--region",
        default=_DEFAULTS.region,
        help="the region a --phone number without its country code is read in "
        "(default %(default)s)",
    )
    erase.add_argument("--source", metavar="CODE", help="only the leads of this source")
    erase.add_argument(
        "--dry-run", action="store_true", help="print how many leads would be erased, erase none"
    )
    erase.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULTS.batch_size,
        metavar="N",
        help="leads per transaction (default %(default)s)",
    )
    erase.add_argument(
        "--pause",
        type=float,
        default=_DEFAULTS.pause_s,
        metavar="SECONDS",
        help="wait between batches, leaving the service its share of the machine "
        "(default %(default)s)",
    )
    erase.set_defaults(run=run)


def _age(text: str) -> timedelta:
    found = _AGE.fullmatch(text.strip())
    if found is None or int(found.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 90d or 12h")
    return timedelta(**{{"d": "days", "h": "hours"}[found.group(2)]: int(found.group(1))})


def run(args: argparse.Namespace) -> int:
    cut_off = None if args.older_than is None else datetime.now(UTC) - args.older_than
    command = EraseContact(
        email=args.email,
        phone=args.phone,
        region=args.region,
        received_before=cut_off,
        source_code=args.source,
        dry_run=args.dry_run,
        batch_size=args.batch_size,
        pause_s=args.pause,
    )
    try:
        result = asyncio.run(execute(command))
    except ErasureError as error:
        print(f"leads: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "leads: interrupted: the leads erased so far stay erased (counted in their "
            "lead_erasures row); run the same command again to erase the rest",
            file=sys.stderr,
        )
        return 130
    leads = f"{result.leads} lead" + ("" if result.leads == 1 else "s")
    if result.dry_run:
        print(f"would erase {leads}")
    else:
        print(f"erased {leads} (lead_erasures row {result.erasure_id})")
    return 0 if result.leads else 1

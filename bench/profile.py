"""py-spy for `bench/run --profile DIR`: finding it, and summarizing its raw (collapsed) stacks.

`python -m bench.profile FILE` prints the summary of a profile recorded earlier.
A raw line is `frame;frame;…;leaf COUNT`, a frame `function (path:line)`, root first.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY_VERSION = "0.4.3"
TOOLS = Path(__file__).resolve().parent / ".tools"  # git-ignored (bench/.gitignore)

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")


def find_py_spy(explicit: str | None = None) -> str:
    """py-spy: the given path, else on PATH or beside this python, else installed into a venv
    of its own under bench/.tools (never into the project's dependencies)."""
    if explicit:
        return explicit
    for candidate in (
        shutil.which("py-spy"),
        str(Path(sys.executable).parent / "py-spy"),
        str(TOOLS / "bin" / "py-spy"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    print(f"[bench] installing py-spy=={PY_SPY_VERSION} into {TOOLS}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
    subprocess.run(
        [str(TOOLS / "bin" / "pip"), "install", "--quiet", f"py-spy=={PY_SPY_VERSION}"], check=True
    )
    return str(TOOLS / "bin" / "py-spy")


def parse_frame(frame: str) -> tuple[str, str]:
    """(function, path) of one frame; path is shortened to what follows site-packages."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    path = match.group("path")
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return match.group("function"), path


def group_of(path: str) -> str:
    """The package a frame belongs to: `sqlalchemy`, `asyncpg`, `stdlib:asyncio`, `app:web`…"""
    if not path:
        return "native/other"
    if re.search(r"\.(c|cpp|hpp|h)$", path) or ".so" in path:
        return "native:" + path.rsplit("/", 1)[-1]
    head, _, rest = path.partition("/")
    if head == "stdlib":
        module = rest.split("/", 1)[0]
        return "stdlib:" + module.removesuffix(".py")
    if head in ("web", "domain", "handlers", "infrastructure", "queries", "commands", "bench"):
        return "app:" + head
    if path.startswith("<"):
        return "native/other"
    return head.removesuffix(".py")


# Threads that block in a syscall py-spy does not see as idle: uvicorn's worker health-check
# pipe (`always_pong`), the supervisor's wait, multiprocessing's resource tracker.
_IDLE_HELPERS = re.compile(r"Process\.always_pong$|Multiprocess\.run$|resource_tracker\.py:main$")


def _python_frames(stack: str) -> list[str]:
    """The frames of one raw stack without py-spy's `process …`/`thread …` pseudo-frames (a
    process frame quotes the command line, which may itself contain `;`)."""
    frames: list[str] = []
    pieces = iter(stack.split(";"))
    for piece in pieces:
        if piece.startswith("process ") and piece.count('"') % 2 == 1:
            for rest in pieces:  # skip up to the piece that closes the quoted command line
                if rest.count('"') % 2 == 1:
                    break
            continue
        if piece.startswith("process ") or piece.startswith("thread "):
            continue
        frames.append(piece)
    return frames


def load(raw: Path) -> tuple[list[tuple[list[tuple[str, str]], int]], int]:
    """The stacks of a raw profile, and how many samples were idle helper threads."""
    stacks, idle = [], 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [parse_frame(f) for f in _python_frames(stack)]
        if not frames or any(_IDLE_HELPERS.search(f"{p}:{fn}") for fn, p in frames):
            idle += int(count)
            continue
        stacks.append((frames, int(count)))
    return stacks, idle


# Inclusive buckets: a sample counts in every bucket one of its frames matches. Frames are
# "path:Class.method". SQLAlchemy runs its sync core inside greenlets, whose stacks py-spy shows
# with their own root (Connection.execute, Engine.connect…), not under the handler frame.
STAGES: list[tuple[str, re.Pattern[str]]] = [
    (label, re.compile(pattern))
    for label, pattern in [
        ("uvicorn: HTTP parsing (data_received)", r"^uvicorn/.*:HttpToolsProtocol\.data_received$"),
        ("uvicorn: response send (incl. access log)", r"^uvicorn/.*:RequestResponseCycle\.send$"),
        ("  access log (logging)", r"^(stdlib/)?logging/|^uvicorn/logging"),
        (
            "ASGI app: FastAPI + Starlette + middlewares",
            r"^fastapi/applications\.py:FastAPI\.__call__$",
        ),
        ("  FastAPI telemetry check (opentelemetry env lookups)", r"NativeTelemetry\.enabled$"),
        ("  FastAPI dependency solving", r"^fastapi/dependencies/utils\.py:solve_dependencies$"),
        ("  endpoint web/leads.py:ingest_lead", r"^web/leads\.py:ingest_lead$"),
        ("    request → command (body, parse, keys)", r"^web/leads\.py:build_command$"),
        (
            "    handler IngestLeadHandler.__call__",
            r"^handlers/ingest_lead\.py:IngestLeadHandler\.__call__$",
        ),
        ("      lead store enter (deadline)", r"UnitOfWork\.__aenter__$"),
        ("      classify (catalog cache; SELECT source on a miss)", r"_resolve_source$"),
        ("      normalize, key, lead_id (_new_lead)", r"^handlers/ingest_lead\.py:_new_lead$"),
        ("        phonenumbers", r"^phonenumbers/"),
        ("      the one statement (WITH … INSERT)", r"SqlLeadRepository\.add$"),
        ("        pool checkout (first statement)", r"DriverLeadStore\._driver$"),
        ("      lead store exit (checkin)", r"UnitOfWork\.__aexit__$"),
        ("SQLAlchemy core inside greenlets (own roots)", r"^greenlet-root$"),
        ("SQLAlchemy, any frame", r"^sqlalchemy/"),
        ("  greenlet_spawn / await_ (the greenlet bridge)", r"^sqlalchemy/util/_?concurrency"),
        (
            "  asyncpg adapter (dialects/postgresql/asyncpg.py)",
            r"^sqlalchemy/dialects/postgresql/asyncpg\.py",
        ),
        ("  pool checkout/checkin", r"^sqlalchemy/pool/"),
        ("asyncpg, any frame", r"^asyncpg/"),
        ("socket write() syscalls (--native only)", r"^(libc[^:]*|native):write$"),
        ("epoll wait (--native only)", r"epoll_(p)?wait$"),
        ("GC (--native only)", r"gc_collect"),
    ]
]


# Frames every request runs under (process start-up, the event loop, the ASGI middleware chain):
# left out of the inclusive table, which should show where the time splits.
_BOILERPLATE = re.compile(
    r"^(<frozen runpy>|click/|uvicorn/(main|__main__|_compat|server)|(stdlib/)?asyncio/runners"
    r"|uvicorn/middleware/|uvicorn/protocols/http/httptools_impl\.py:RequestResponseCycle\.run_asgi"
    r"|starlette/(applications|middleware/|_exception_handler|routing)|fastapi/(applications|"
    r"routing|middleware|_body_limit|telemetry/_asgi\.py:ExceptionTelemetryMiddleware)"
    r"|web/errors\.py:UnexpectedErrorMiddleware\.__call__$|multiprocessing/|loop\.c|"
    r"_asynciomodule\.c|object\.h|core\.c|queue\.h|loop-watcher\.c|libc\.so\.6:0x)"
)


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    stacks, idle = load(raw)
    total = sum(count for _, count in stacks)
    if total == 0:
        return {"samples": 0}
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    for frames, count in stacks:
        keys = {f"{path}:{function}" for function, path in frames}
        if frames and frames[0][1].startswith("sqlalchemy/"):
            keys.add("greenlet-root")
        for key in keys - {"greenlet-root"}:
            inclusive[key] += count
        for label, pattern in STAGES:
            if any(pattern.search(key) for key in keys):
                stages[label] += count
        if frames:
            function, path = frames[-1]
            leaf[f"{path}:{function}"] += count
            groups[group_of(path)] += count

    for key in list(inclusive):
        if _BOILERPLATE.search(key):
            del inclusive[key]

    def pct(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)]

    return {
        "samples": total,
        "idle_helper_thread_samples_dropped": idle,
        "stages_inclusive_pct": [
            (label, round(100 * stages[label] / total, 1)) for label, _ in STAGES
        ],
        "self_by_package_pct": pct(groups, top),
        "self_by_function_pct": pct(leaf, top),
        "inclusive_by_function_pct": pct(inclusive, top),
    }


def render(summary: dict[str, Any], top: int = 25) -> str:
    if not summary.get("samples"):
        return "(no samples)"
    lines = [
        f"{summary['samples']} samples (on-CPU Python stacks of the service; "
        f"{summary.get('idle_helper_thread_samples_dropped', 0)} samples of blocked helper "
        "threads left out).",
        "",
    ]
    lines += ["| stage (inclusive) | % |", "|---|---|"]
    lines += [f"| {label} | {p} |" for label, p in summary["stages_inclusive_pct"]]
    lines += ["", "| package (self time) | % |", "|---|---|"]
    lines += [f"| {k} | {p} |" for k, p in summary["self_by_package_pct"][:top]]
    lines += ["", "| function (self time) | % |", "|---|---|"]
    lines += [f"| `{k}` | {p} |" for k, p in summary["self_by_function_pct"][:top]]
    lines += ["", "| function (inclusive) | % |", "|---|---|"]
    lines += [f"| `{k}` | {p} |" for k, p in summary["inclusive_by_function_pct"][:top]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(summarize(Path(sys.argv[1]), top=40), top=40))

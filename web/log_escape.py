"""Request-derived text made safe for a log line: it can neither end the line nor fake one."""

from __future__ import annotations

_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    if character.isprintable():
        return character
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def log_safe(value: object) -> str:
    """`value` as text with every non-printable character escaped (`\\n`, `\\x00`, `\\u2028`,
    …) and backslashes doubled, so the escaped form reads back unambiguously.

    Non-printable is what `str.isprintable()` says: controls (C0, DEL, C1), format characters,
    line and paragraph separators, surrogates, unassigned code points, and spaces other than
    U+0020. Printable non-ASCII text (a Unicode host name) stays readable.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(map(_escape, text))

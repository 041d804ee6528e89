"""The base of every command message: a command names the result type its handler returns."""

from __future__ import annotations

from typing import Generic, TypeVar

R_co = TypeVar("R_co", covariant=True)


class Command(Generic[R_co]):
    """Marker base: subclasses are frozen dataclasses named as imperatives (`IngestLead`)."""

    __slots__ = ()

"""A real service process for the end-to-end tests, shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Service, running_service


@pytest.fixture(scope="session")
def service(database_url: str) -> Iterator[Service]:
    with running_service(database_url, "--no-access-log") as service:
        yield service

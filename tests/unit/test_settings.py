"""The settings model: `.env` as Windows editors save it, and the Configuration table drawn
from the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.settings import VARIABLES, Settings, SettingsError, configuration_table


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_env_file_with_a_byte_order_mark_is_read(workdir: Path) -> None:
    (workdir / ".env").write_text("LEADS_DB_POOL_SIZE=3\n", encoding="utf-8-sig")
    assert Settings.from_env().db_pool_size == 3


def test_env_file_that_is_not_utf8_is_one_line(workdir: Path) -> None:
    (workdir / ".env").write_text("LEADS_DB_POOL_SIZE=3\n", encoding="utf-16")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert str(caught.value) == f"{workdir / '.env'} is not UTF-8 text: save it as UTF-8"


def test_configuration_table_has_a_row_per_setting_with_its_default() -> None:
    rows = configuration_table().splitlines()[2:]
    assert [row.split(" | ")[0].strip("| `") for row in rows] == list(VARIABLES)
    defaults = {row.split(" | ")[0].strip("| `"): row.split(" | ")[1].strip("`") for row in rows}
    assert Settings.from_env(defaults) == Settings()
    assert all(row.count(" | ") == 2 and not row.endswith("|  |") for row in rows)

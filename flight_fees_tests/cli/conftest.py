"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    """A fresh Dagster instance directory for commands that launch runs in process."""
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home

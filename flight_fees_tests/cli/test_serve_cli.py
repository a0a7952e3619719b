"""``flight-fees serve`` refuses an unsafe bind before it starts anything."""

from __future__ import annotations

from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.http.docserver import TOKEN_ENV

runner = CliRunner()


def test_non_loopback_bind_needs_a_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "18090"])
    assert result.exit_code == 2
    assert TOKEN_ENV in result.output and "refusing to start" in result.output


def test_short_token_is_refused(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "short")
    result = runner.invoke(app, ["serve", "--port", "18090"])
    assert result.exit_code == 2 and "at least 16" in result.output


def test_help_names_the_routes_and_settings():
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("/maps/flight/ID", "/invoices/NUMBER", "FLIGHT_FEES_PUBLIC_URL", "--port"):
        assert text in result.output

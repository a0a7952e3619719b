"""One error convention for every command: ``error: ...`` on stderr, exit 2 for a usage error
(bad argument, option or setting), 1 for a failure; never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flight_fees.cli.main import COMMANDS, app, load_command

runner = CliRunner()


def _leaf_commands() -> list[list[str]]:
    paths: list[list[str]] = []
    for name, spec in COMMANDS.items():
        command = load_command(name)
        if spec.group:
            paths += [[name, sub] for sub in sorted(command.commands)]  # type: ignore[attr-defined]
        else:
            paths.append([name])
    return paths


def _assert_convention(result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("path", _leaf_commands(), ids=" ".join)
def test_every_command_reports_an_unknown_option_the_same_way(path):
    result = runner.invoke(app, [*path, "--no-such-option"], env={"COLUMNS": "200"})
    _assert_convention(result, 2)
    assert "No such option" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["enqueue", "1", "--priority", "urgent"],
        ["enqueue", "--date", "tomorrow", "1"],
        ["process", "abc"],
        ["process"],
        ["tracks", "--day", "2026-02-30"],
        ["quote", "--zone", "LF", "--date", "x", "--distance-km", "1", "--mtow-kg", "1"],
        ["invoice", "pay", "INV-1", "--date", "yesterday"],
        ["invoice", "list", "--status", "LOST"],
        ["invoice", "list", "--from", "2026-13-01"],
        ["lines", "--cursor", "nonsense"],
        ["lines", "--flight", "-3"],
        ["batches", "--day", "someday"],
        ["batches", "show", "b1", "--interval", "0"],
        ["customers", "add", "LH", "--name", "x", "--frequency", "daily"],
        ["aircraft", "add", "D-AIRX", "--mtow-kg", "5000000"],
        ["aircraft", "add", "D-AIRX", "--effective-from", "2026-11-01"],
        ["conflicts", "resolve", "abc", "1"],
        ["demo", "--start", "someday"],
    ],
    ids=" ".join,
)
def test_bad_arguments_are_usage_errors(args, db_url, monkeypatch, dagster_home):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    if args[0] == "demo":
        monkeypatch.delenv("FLIGHT_FEES_DATABASE_URL")
    _assert_convention(runner.invoke(app, args, env={"COLUMNS": "200"}), 2)


@pytest.mark.parametrize(
    "args",
    [
        ["invoice", "show", "INV-2026-999999"],
        ["invoice", "document", "CN-2026-999999"],
        ["credit-notes", "show", "CN-2026-999999"],
        ["customers", "show", "NOPE"],
        ["customers", "import", "/nonexistent/customers.csv"],
        ["aircraft", "import", "/nonexistent/aircraft.csv"],
        ["batches", "show", "no-such-batch"],
        ["conflicts", "resolve", "999999", "1"],
    ],
    ids=" ".join,
)
def test_failures_exit_1(args, db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    _assert_convention(runner.invoke(app, args, env={"COLUMNS": "200"}), 1)


def test_an_unreachable_database_is_a_failure(monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    _assert_convention(runner.invoke(app, ["lines"]), 1)

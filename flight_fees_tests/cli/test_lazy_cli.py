"""The CLI registers its commands lazily: listing and a command's help import only what that
command needs, and the static descriptions stay equal to the commands' own help."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flight_fees.cli.main import COMMANDS, app, load_command

runner = CliRunner()


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ").strip()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_static_description_matches_the_command(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert COMMANDS[name].help == _first_line(command.short_help or command.help)


def test_main_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, spec in COMMANDS.items():
        assert name in result.output
        assert spec.help in result.output


def _modules_after(code: str) -> set[str]:
    probe = (
        "import sys\n"
        f"{code}\n"
        "print(' '.join(m for m in ('dagster', 'sqlalchemy', 'alembic', 'folium', 'duckdb', "
        "'pandas', 'shapely', 'geopandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(out.split())


def test_import_and_help_import_no_heavy_dependency() -> None:
    assert _modules_after("import flight_fees.cli.main") == set()
    listed = _modules_after(
        "from typer.testing import CliRunner\n"
        "from flight_fees.cli.main import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0"
    )
    assert listed == set()


def test_crossings_help_imports_no_database_dagster_or_maps() -> None:
    loaded = _modules_after(
        "from typer.testing import CliRunner\n"
        "from flight_fees.cli.main import app\n"
        "assert CliRunner().invoke(app, ['crossings', '--help']).exit_code == 0"
    )
    assert not loaded & {"dagster", "sqlalchemy", "alembic", "folium", "duckdb", "geopandas"}


def test_unknown_command_still_suggests() -> None:
    result = runner.invoke(app, ["crosings"], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "No such command" in result.output
    assert "Did you mean 'crossings'" in result.output

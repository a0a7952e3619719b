"""docs/ARCHITECTURE.md against the code: every frame table lists exactly the columns of the
constant named above it (``Columns: `module.CONSTANT```), the frames that must be documented
are, and every module the concept table points to exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"
#: the column contracts a reader of the architecture must find there
REQUIRED = {
    "flight_fees.lib.tracks.base.TRACK_COLUMNS",
    "flight_fees.lib.airspace.crossings.CROSSING_COLUMNS",
    "flight_fees.lib.airspace.zones.ZONE_VISIT_COLUMNS",
    "flight_fees.lib.charging.fees.FEE_LINE_FRAME_COLUMNS",
    "flight_fees.lib.billing.fee_lines.STORED_FEE_LINE_COLUMNS",
    "flight_fees.lib.billing.invoicing.INVOICE_COLUMNS",
}
MARKER = re.compile(r"^Columns: `([\w.]+)`\s*$")


def documented_tables(text: str) -> dict[str, list[str]]:
    """``{constant: [column, ...]}``: the first cells of the table after each marker line,
    split at commas, backticks dropped (a cell may name several columns)."""
    lines = text.splitlines()
    tables: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        match = MARKER.match(line)
        if not match:
            continue
        rest = iter(lines[index + 1 :])
        row = next((r for r in rest if r.strip()), "")
        assert row.startswith("|"), f"no table after {line!r}"
        columns: list[str] = []
        for row in rest:  # past the header, then the |---| line
            if not row.startswith("|"):
                break
            cell = row.strip("|").split("|")[0].strip()
            if set(cell) <= {"-", ":", " "}:
                continue
            columns += [name.strip().strip("`") for name in cell.split(",")]
        assert match.group(1) not in tables, f"{match.group(1)} documented twice"
        tables[match.group(1)] = columns
    return tables


def constant(dotted: str) -> object:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


TABLES = documented_tables(DOC.read_text(encoding="utf-8"))


def test_the_required_frames_are_documented():
    assert set(TABLES) >= REQUIRED


@pytest.mark.parametrize("dotted", sorted(TABLES))
def test_a_frame_table_lists_exactly_the_constant_columns(dotted):
    columns = TABLES[dotted]
    assert len(columns) == len(set(columns)), "a column listed twice"
    code = constant(dotted)
    assert isinstance(code, (tuple, frozenset, set)) and all(isinstance(c, str) for c in code)
    assert sorted(columns) == sorted(code)


def test_the_parser_sees_a_wrong_table():
    """A column too many, one missing and a multi-column cell, on a made-up table."""
    text = "Columns: `m.X`\n\n| column | notes |\n|---|---|\n| a, `b` | |\n| c | x, y |\nafter\n"
    assert documented_tables(text) == {"m.X": ["a", "b", "c"]}


def test_every_module_of_the_concept_table_exists():
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Where each concept lives", 1)[1].split("\n## ", 1)[0]
    modules = set(re.findall(r"`(flight_fees(?:\.\w+)+)`", section))
    assert len(modules) > 25
    missing = []
    for name in sorted(modules):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            missing.append(name)
    assert missing == []

"""Reading flight ids from user input (arguments, text or CSV files) with line-level errors."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flight_fees.lib.queue import QueueError, parse_flight_id

ID_COLUMNS = ("flight_id", "flightid", "id")


@dataclass
class ParsedIds:
    """Valid ids in input order (de-duplicated) and the rejected entries with their place."""

    ids: list[int] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (where, message)
    duplicates: int = 0

    def add(self, raw: str, where: str, seen: set[int]) -> None:
        try:
            value = parse_flight_id(raw)
        except QueueError as exc:
            self.invalid.append((where, str(exc)))
            return
        if value in seen:
            self.duplicates += 1
            return
        seen.add(value)
        self.ids.append(value)


def parse_flight_ids(args: Iterable[str], files: Iterable[Path] = ()) -> ParsedIds:
    """Parse ids from command-line arguments and from files (one id per line, or a CSV with a
    ``flight_id`` column; blank lines and ``#`` comments are ignored)."""
    result = ParsedIds()
    seen: set[int] = set()
    for i, raw in enumerate(args, start=1):
        result.add(raw, f"argument {i}", seen)
    for path in files:
        for where, raw in _file_entries(path):
            result.add(raw, where, seen)
    return result


def _file_entries(path: Path) -> Iterator[tuple[str, str]]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise QueueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.reader(handle)
        column = 0
        for line_no, row in enumerate(reader, start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if line_no == 1 and not cells[0].isdigit():
                lowered = [c.lower() for c in cells]
                header = next((c for c in ID_COLUMNS if c in lowered), None)
                if header is not None:
                    column = lowered.index(header)
                    continue
            if column >= len(cells):
                yield f"{path.name}:{line_no}", ""
                continue
            yield f"{path.name}:{line_no}", cells[column]

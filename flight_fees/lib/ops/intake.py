"""Reading flight ids from user input (arguments, text or CSV files) with line-level errors."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flight_fees.lib.ops.queue import QueueError, parse_flight_id

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
    ``flight_id`` column; blank lines and ``#`` comments are ignored). A line that is not
    UTF-8 text is reported as invalid (with its number) and the rest of the file is read."""
    result = ParsedIds()
    seen: set[int] = set()
    for i, raw in enumerate(args, start=1):
        result.add(raw, f"argument {i}", seen)
    for path in files:
        for where, raw, error in _file_entries(path):
            if error is not None:
                result.invalid.append((where, error))
            else:
                result.add(raw, where, seen)
    return result


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """``(line number, text, None)`` per line, or ``(line number, None, error)`` for a line
    that is not UTF-8 (the others are still read)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise QueueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for line_no, raw in enumerate(data.splitlines(), start=1):
        try:
            yield line_no, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield (
                line_no,
                None,
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
            )


def _file_entries(path: Path) -> Iterator[tuple[str, str, str | None]]:
    """``(where, raw id, None)`` per entry of the file, or ``(where, "", error)``."""
    column = 0
    for line_no, text, error in _decoded_lines(path):
        where = f"{path.name}:{line_no}"
        if error is not None:
            yield where, "", error
            continue
        assert text is not None
        try:
            row = next(csv.reader([text]), [])
        except csv.Error as exc:
            yield where, "", f"not a CSV line: {exc}"
            continue
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if line_no == 1 and not cells[0].isdigit():
            lowered = [c.lower() for c in cells]
            header = next((c for c in ID_COLUMNS if c in lowered), None)
            if header is not None:
                column = lowered.index(header)
                continue
        yield where, (cells[column] if column < len(cells) else ""), None

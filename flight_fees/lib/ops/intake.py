"""Intake rules: flight ids and enqueue requests from user input, whatever the entry point.

- :func:`parse_flight_ids`: ids from command-line arguments and text or CSV files, with
  line-level errors (``flight-fees enqueue``);
- :func:`parse_enqueue_request`: a JSON enqueue request (``{"flight_ids": [...], "priority":
  ..., "flight_date": ...}`` or a bare list of ids), validated whole: the body of
  ``POST /flights`` of the HTTP intake endpoint (:mod:`flight_fees.http.intake`, which adds
  the signature, limits and status codes; ``flight-fees serve-intake`` runs it).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flight_fees.lib.db.models import PRIORITIES
from flight_fees.lib.ops.queue import QueueError, parse_flight_id

__all__ = [
    "ID_COLUMNS",
    "MAX_REPORTED_ERRORS",
    "REQUEST_KEYS",
    "EnqueueRequest",
    "InvalidRequest",
    "ParsedIds",
    "TooManyIds",
    "parse_enqueue_request",
    "parse_flight_ids",
]

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


# -- JSON enqueue requests ----------------------------------------------------------------------

#: the fields of a JSON enqueue request object
REQUEST_KEYS = frozenset({"flight_ids", "priority", "flight_date"})
#: invalid ids reported by name (the total count is always given)
MAX_REPORTED_ERRORS = 10
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidRequest(ValueError):
    """An enqueue request that is refused as a whole; ``invalid`` names up to
    :data:`MAX_REPORTED_ERRORS` bad flight ids (``flight_ids[<index>]: <reason>``)."""

    def __init__(self, message: str, invalid: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.invalid = invalid


class TooManyIds(InvalidRequest):
    """More flight ids than the entry point accepts in one request."""


@dataclass(frozen=True)
class EnqueueRequest:
    flight_ids: list[int]
    priority: str = "normal"
    flight_date: dt.date | None = None


def _flight_date(raw: Any) -> dt.date | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not _DATE.match(raw) or not raw.isascii():
        raise InvalidRequest(f"flight_date must be a 'YYYY-MM-DD' string, got {repr(raw)[:40]}")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"flight_date is not a valid date: {raw!r}") from None


def parse_enqueue_request(body: bytes, max_ids: int) -> EnqueueRequest:
    """Validate a whole JSON enqueue request (:class:`InvalidRequest`, :class:`TooManyIds` for
    more than ``max_ids`` ids): flight ids are JSON integers or strings of ASCII digits (never
    booleans or floats), ``priority`` one of the queue priorities, ``flight_date`` a
    ``YYYY-MM-DD`` string; one invalid id refuses the request."""
    try:
        payload = json.loads(body)
    except UnicodeDecodeError:
        raise InvalidRequest("invalid JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidRequest("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidRequest(f"invalid JSON: {str(exc)[:200]}") from None

    priority: Any = "normal"
    flight_date: dt.date | None = None
    if isinstance(payload, list):
        raw_ids: Any = payload
    elif isinstance(payload, dict):
        unknown = sorted(set(payload) - REQUEST_KEYS)
        if unknown:
            shown = ", ".join(repr(k)[:40] for k in unknown[:10])
            raise InvalidRequest(
                f"unknown field(s): {shown}; expected {', '.join(sorted(REQUEST_KEYS))}"
            )
        if "flight_ids" not in payload:
            raise InvalidRequest("missing field: flight_ids")
        raw_ids = payload["flight_ids"]
        priority = payload.get("priority", "normal")
        flight_date = _flight_date(payload.get("flight_date"))
    else:
        raise InvalidRequest(
            "the body must be a JSON object with flight_ids, or a JSON list of ids"
        )

    if not isinstance(priority, str) or priority not in PRIORITIES:
        raise InvalidRequest(
            f"priority must be one of {', '.join(PRIORITIES)}, got {repr(priority)[:40]}"
        )
    if not isinstance(raw_ids, list):
        raise InvalidRequest("flight_ids must be a JSON list")
    if len(raw_ids) > max_ids:
        raise TooManyIds(f"too many flight ids ({len(raw_ids)} > {max_ids})")

    ids: list[int] = []
    errors: list[str] = []
    invalid = 0
    for index, raw in enumerate(raw_ids):
        try:
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise QueueError(f"not a flight id (positive integer expected): {repr(raw)[:40]}")
            ids.append(parse_flight_id(raw))
        except QueueError as exc:
            invalid += 1
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(f"flight_ids[{index}]: {exc}")
    if invalid:
        raise InvalidRequest(f"{invalid} invalid flight id(s); nothing was enqueued", errors)
    return EnqueueRequest(ids, priority, flight_date)

"""Tracks from Apache Pinot, through the pinotdb DB-API client.

How a fetch talks to the broker (``POST <broker>/query/sql``):

- Once per source instance, ``SELECT * FROM "table" LIMIT 1`` discovers which of the mapped
  columns the table has (optional attributes it lacks are left out; a missing required column
  is a ``query_error``).
- Flights are fetched ``chunk_size`` at a time (``"flight_id" IN (...)``) with a filter on the
  raw time column in epoch milliseconds (``"ts" >= lo AND "ts" < hi``) so that the broker can
  prune segments, ``ORDER BY "flight_id", "ts"`` and always an explicit ``LIMIT``.
- Pages are chained by keyset on ``(flight_id, ts)``: the next page adds
  ``("flight_id" > f OR ("flight_id" = f AND "ts" > t))`` for the last row ``(f, t)``. A page
  shorter than its LIMIT ends the chunk only when it is provably not truncated by a broker
  row cap: a capped page holds exactly ``cap`` rows, so a short page that is shorter than the
  longest page the broker ever returned is final. Otherwise one confirming query follows; if
  it returns rows, the broker cap is learnt (``stats["row_cap"]``) and used as LIMIT from then
  on. Neither Pinot's implicit ``LIMIT 10`` nor a silent row cap can drop points.
- The query timeout is sent as the ``timeoutMs`` query option; the HTTP client times out
  ``http_grace_s`` later so that the broker's own timeout answer is normally seen first.

Answers are checked before any row is used: broker ``exceptions`` (HTTP 200), ``partialResult``,
``numServersResponded < numServersQueried``, missing server counts (completeness cannot be
attested) and limit flags fail the query with a category (see
:mod:`flight_fees.lib.tracks.base`). Partial data is never returned: the flights of a failed
chunk are failed, except those whose rows all arrived on earlier, complete pages (keyset
order guarantees those are complete). ``timeout``, ``source_unavailable`` and
``partial_result`` are retried ``retries`` times with exponential back-off and jitter; after a
chunk ends ``source_unavailable`` the circuit opens and the remaining chunks of the call fail
fast without querying.

Values: zone-less TIMESTAMP strings (``"2024-03-01 12:34:56.0"``) are read as UTC; a LONG
epoch-millisecond time column works as well. Null sentinels (``-Infinity`` / ``NaN`` doubles,
``"null"`` strings, (0, 0) and out-of-range positions) are dropped.

The query count of ``fetch`` for N flights is
``[1 schema probe, first call only] + sum over ceil(N / chunk_size) chunks of
(floor(rows_c / L) + 1) + k`` where ``L = min(page_size, row cap)`` and ``k <= number of
chunks`` counts the confirming queries (0 when ``max_rows`` is configured), plus retries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pandas as pd
import pinotdb
import tenacity
from pinotdb import exceptions as pinot_exceptions

from flight_fees.lib.core.redact import mask_url
from flight_fees.lib.core.timeutil import as_utc_timestamp
from flight_fees.lib.tracks.base import (
    ATTRIBUTE_COLUMNS,
    NOT_FOUND,
    PARTIAL_RESULT,
    QUERY_ERROR,
    REQUIRED_COLUMNS,
    RETRYABLE_FETCH_CATEGORIES,
    SOURCE_UNAVAILABLE,
    TIMEOUT,
    TRACK_COLUMNS,
    BaseTrackSource,
    FetchFailure,
    TrackFetchResult,
    TrackSourceError,
    day_start,
    empty_tracks,
    epoch_ms,
    normalise_tracks,
    resolve_window,
    validate_flight_ids,
)

log = logging.getLogger(__name__)

#: logical column -> physical column of the default table layout
DEFAULT_COLUMNS: dict[str, str] = {c: c for c in TRACK_COLUMNS}

# Pinot QueryErrorCode values (pinot-spi QueryErrorCode / QueryException)
_TIMEOUT_CODES = frozenset({170, 240, 250, 400})  # combine / scheduling / execution / broker
_PARTIAL_CODES = frozenset({230, 235, 300, 305, 310, 350, 425, 427})  # servers/segments missing
_UNAVAILABLE_CODES = frozenset({205, 210, 211, 410, 420, 429, 503, 510, 550})
#: response flags meaning "rows were dropped by an execution limit"
_LIMIT_FLAGS = (
    "numGroupsLimitReached",
    "maxRowsInJoinReached",
    "maxRowsInWindowReached",
    "maxRowsInDistinctReached",
)
#: precedence when one answer carries several kinds of exception
_SEVERITY = (QUERY_ERROR, SOURCE_UNAVAILABLE, TIMEOUT, PARTIAL_RESULT)


class _QueryFailed(Exception):
    """One query failed; ``retryable`` is False for failures a retry cannot cure."""

    def __init__(self, category: str, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.retryable = category in RETRYABLE_FETCH_CATEGORIES if retryable is None else retryable


@dataclass
class _PagingFailed(Exception):
    """Paging stopped on a failed query; rows of earlier, complete pages are kept."""

    failure: _QueryFailed
    rows: list[list[Any]]
    after: tuple[int, ...] | None


@dataclass
class _Counters:
    queries: int = 0
    retries: int = 0
    pages: int = 0
    confirmations: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class _Answer:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    payload: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _raising_source_error(what: str) -> Iterator[None]:
    """Re-raise a failed query or paging as :class:`TrackSourceError` ``"<what>: <message>"``
    with the failure's category."""
    try:
        yield
    except _PagingFailed as stop:
        raise TrackSourceError(
            f"{what}: {stop.failure.message}", category=stop.failure.category
        ) from stop
    except _QueryFailed as failure:
        raise TrackSourceError(f"{what}: {failure.message}", category=failure.category) from failure


def _key_columns(selected: list[tuple[str, str]]) -> tuple[str, str]:
    """The quoted physical ``flight_id`` and ``ts`` columns."""
    phys = dict(selected)
    return quote_identifier(phys["flight_id"]), quote_identifier(phys["ts"])


def _attributes(selected: list[tuple[str, str]]) -> list[str]:
    """The optional attribute columns among the selected ones."""
    return [c for c, _ in selected if c in ATTRIBUTE_COLUMNS]


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (Pinot / Calcite syntax)."""
    if not name or "\x00" in name or "%" in name:  # pinotdb applies %-formatting to the SQL
        raise ValueError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _classify_exceptions(exceptions: list[Any]) -> _QueryFailed:
    categories: list[str] = []
    messages: list[str] = []
    for exc in exceptions:
        code = exc.get("errorCode") if isinstance(exc, dict) else None
        text = exc.get("message", "") if isinstance(exc, dict) else str(exc)
        if code in _TIMEOUT_CODES:
            categories.append(TIMEOUT)
        elif code in _PARTIAL_CODES:
            categories.append(PARTIAL_RESULT)
        elif code in _UNAVAILABLE_CODES:
            categories.append(SOURCE_UNAVAILABLE)
        else:
            categories.append(QUERY_ERROR)
        first_line = str(text).strip().splitlines()[0] if str(text).strip() else ""
        messages.append(f"errorCode {code}: {first_line[:300]}")
    category = min(categories, key=_SEVERITY.index)
    return _QueryFailed(category, "broker exceptions: " + "; ".join(messages))


def _classify_http_status(status: int, body: Any) -> _QueryFailed:
    text = json.dumps(body)[:300] if isinstance(body, dict | list) else str(body)[:300]
    if status in (401, 403):
        return _QueryFailed(
            SOURCE_UNAVAILABLE,
            f"broker rejected the credentials (HTTP {status}): {text}",
            retryable=False,
        )
    if status == 404:
        return _QueryFailed(
            SOURCE_UNAVAILABLE, f"no query endpoint at this URL (HTTP 404): {text}", retryable=False
        )
    if status in (408, 504):
        return _QueryFailed(TIMEOUT, f"HTTP {status}: {text}")
    if status == 429 or status >= 500:
        return _QueryFailed(SOURCE_UNAVAILABLE, f"HTTP {status}: {text}")
    return _QueryFailed(QUERY_ERROR, f"HTTP {status}: {text}")


def check_broker_response(status: int, payload: Any) -> _Answer:
    """Validate one broker answer; raise :class:`_QueryFailed` unless it is complete."""
    if not isinstance(payload, dict):
        if status != 200:
            raise _classify_http_status(status, payload)
        raise _QueryFailed(QUERY_ERROR, f"malformed broker response: {str(payload)[:300]}")
    exceptions = payload.get("exceptions") or []
    if exceptions:
        raise _classify_exceptions(exceptions)
    if status != 200:
        raise _classify_http_status(status, payload)
    if payload.get("partialResult") is True or payload.get("isPartialResult") is True:
        raise _QueryFailed(PARTIAL_RESULT, "broker flagged the result as partial")
    queried = payload.get("numServersQueried")
    responded = payload.get("numServersResponded")
    if not isinstance(queried, int) or not isinstance(responded, int):
        raise _QueryFailed(
            PARTIAL_RESULT,
            "response lacks numServersQueried/numServersResponded: completeness not attested",
        )
    if responded < queried:
        raise _QueryFailed(PARTIAL_RESULT, f"only {responded} of {queried} servers responded")
    reached = [flag for flag in _LIMIT_FLAGS if payload.get(flag) is True]
    if reached:
        raise _QueryFailed(PARTIAL_RESULT, f"execution limit reached: {', '.join(reached)}")
    table = payload.get("resultTable")
    if table is None:
        return _Answer([], [], [], payload)
    if not isinstance(table, dict):
        raise _QueryFailed(QUERY_ERROR, "malformed resultTable")
    schema = table.get("dataSchema") or {}
    columns = list(schema.get("columnNames") or [])
    types = list(schema.get("columnDataTypes") or ["UNKNOWN"] * len(columns))
    rows = table.get("rows") or []
    if not isinstance(rows, list) or (rows and not columns):
        raise _QueryFailed(QUERY_ERROR, "malformed resultTable (rows without columns)")
    return _Answer(columns, types, rows, payload)


def _ts_to_ms(value: Any) -> int:
    """Epoch ms of one time value as the broker sends it (TIMESTAMP string or LONG)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    stamp = as_utc_timestamp(str(value))
    return stamp.value // 1_000_000


def _parse_column_map(raw: Mapping[str, str | None] | None) -> dict[str, str]:
    mapping = dict(DEFAULT_COLUMNS)
    for logical, physical in (raw or {}).items():
        if logical not in DEFAULT_COLUMNS:
            raise ValueError(
                f"unknown track column {logical!r}; expected one of {', '.join(TRACK_COLUMNS)}"
            )
        if physical is None or physical == "":
            if logical in REQUIRED_COLUMNS:
                raise ValueError(f"required track column {logical!r} cannot be disabled")
            mapping.pop(logical)
        else:
            quote_identifier(str(physical))
            mapping[logical] = str(physical)
    physical_names = list(mapping.values())
    if len(set(physical_names)) != len(physical_names):
        raise ValueError(f"two track columns map to the same Pinot column: {mapping}")
    return mapping


class PinotTrackSource(BaseTrackSource):
    """Tracks from a Pinot table through its broker (thread-safe; reuse one instance).

    Parameters: ``broker_url`` (``http[s]://host[:port][/prefix]``; ``/query/sql`` is appended),
    ``table``, ``columns`` (logical -> physical names; ``None`` disables an optional
    attribute), ``bearer_token`` or ``username``/``password`` (HTTP Basic), ``timeout_s`` (the
    ``timeoutMs`` query option; the HTTP timeout is ``timeout_s + http_grace_s``),
    ``page_size`` (rows per query), ``chunk_size`` (flights per ``IN`` list), ``retries``
    and ``backoff_s`` (retry ``i`` waits ``backoff_s * 2**i * U(0.5, 1.5)``), ``max_rows``
    (the broker's known row cap, if any: pages never ask for more and short pages are trusted
    without a confirming query), ``max_flight_duration`` (how far past midnight a flight of a
    day may reach).
    """

    name = "pinot"

    def __init__(
        self,
        broker_url: str,
        *,
        table: str = "flight_positions",
        columns: Mapping[str, str | None] | None = None,
        bearer_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        http_grace_s: float = 2.0,
        page_size: int = 50_000,
        chunk_size: int = 200,
        retries: int = 1,
        backoff_s: float = 0.5,
        max_rows: int | None = None,
        max_flight_duration: dt.timedelta = dt.timedelta(hours=24),
        verify_ssl: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        shown_url = mask_url(broker_url.strip())
        try:
            parts = urlsplit(broker_url.strip())
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError as exc:
            raise ValueError(f"invalid broker URL {shown_url!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"broker URL must be http(s)://host[:port]: {shown_url!r}")
        if parts.username is not None or parts.password is not None:
            # credentials in the URL (http://user:password@host): HTTP Basic, never shown
            if username or password or bearer_token:
                raise ValueError(
                    "give the broker credentials either in the URL or as username/password "
                    "or bearer token, not both"
                )
            username = unquote(parts.username or "")
            password = unquote(parts.password or "")
        if bearer_token and (username or password):
            raise ValueError("give either a bearer token or a username/password, not both")
        if bool(username) != bool(password):
            raise ValueError("username and password go together")
        if timeout_s <= 0 or page_size < 1 or chunk_size < 1 or retries < 0 or backoff_s < 0:
            raise ValueError(
                "timeout_s, page_size, chunk_size must be positive; retries, backoff_s >= 0"
            )
        if max_rows is not None and max_rows < 1:
            raise ValueError("max_rows must be positive")
        #: the URL as shown (password masked); the connection uses host, port and path only
        self.broker_url = shown_url
        self._scheme = parts.scheme
        host = parts.hostname
        self._host = f"[{host}]" if ":" in host else host
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path.rstrip("/")
        self._path = path if path.endswith("/query/sql") else path + "/query/sql"
        self.table = table
        quote_identifier(table)
        self.columns = _parse_column_map(columns)
        self.bearer_token = bearer_token
        self.username = username
        self.password = password
        self.timeout_s = float(timeout_s)
        self.http_grace_s = float(http_grace_s)
        self.page_size = int(page_size)
        self.chunk_size = int(chunk_size)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_rows = max_rows
        self.max_flight_duration = max_flight_duration
        self.verify_ssl = verify_ssl
        self._sleep = sleep
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._connection: Any = None
        self._selected: list[tuple[str, str]] | None = None  # (logical, physical) in order
        self._max_rows_seen = 0
        self._row_cap: int | None = None

    def __repr__(self) -> str:
        return f"PinotTrackSource({self.broker_url!r}, table={self.table!r})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> PinotTrackSource:
        """Configure from ``PINOT_HTTP_BROKER_URL`` (required), ``PINOT_TABLE``,
        ``PINOT_BEARER_TOKEN``, ``PINOT_USERNAME``/``PINOT_PASSWORD``, ``PINOT_TIMEOUT_S``,
        ``PINOT_COLUMN_MAP`` (JSON object logical -> physical), ``PINOT_PAGE_SIZE``,
        ``PINOT_CHUNK_SIZE``, ``PINOT_MAX_ROWS``, ``PINOT_RETRIES``."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        url = get("PINOT_HTTP_BROKER_URL")
        if url is None:
            raise TrackSourceError(
                "PINOT_HTTP_BROKER_URL is not set (e.g. http://pinot-broker:8099)",
                category=SOURCE_UNAVAILABLE,
            )
        kwargs: dict[str, Any] = {
            "table": get("PINOT_TABLE") or "flight_positions",
            "bearer_token": get("PINOT_BEARER_TOKEN"),
            "username": get("PINOT_USERNAME"),
            "password": get("PINOT_PASSWORD"),
        }
        try:
            if (raw := get("PINOT_COLUMN_MAP")) is not None:
                mapping = json.loads(raw)
                if not isinstance(mapping, dict):
                    raise ValueError("PINOT_COLUMN_MAP must be a JSON object")
                kwargs["columns"] = mapping
            for env_name, key, conv in (
                ("PINOT_TIMEOUT_S", "timeout_s", float),
                ("PINOT_PAGE_SIZE", "page_size", int),
                ("PINOT_CHUNK_SIZE", "chunk_size", int),
                ("PINOT_MAX_ROWS", "max_rows", int),
                ("PINOT_RETRIES", "retries", int),
            ):
                if (value := get(env_name)) is not None:
                    kwargs[key] = conv(value)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"invalid Pinot configuration in the environment: {exc}") from exc
        kwargs.update(overrides)
        return cls(url, **kwargs)

    # -- connection ------------------------------------------------------------------------

    def _cursor(self) -> Any:
        with self._lock:
            if self._connection is None:
                http_timeout = self.timeout_s + self.http_grace_s
                headers = {"Accept": "application/json"}
                if self.bearer_token:
                    headers["Authorization"] = f"Bearer {self.bearer_token}"
                self._client = httpx.Client(
                    timeout=httpx.Timeout(http_timeout, connect=min(http_timeout, 10.0)),
                    headers=headers,
                    verify=self.verify_ssl,
                )
                self._connection = pinotdb.connect(
                    host=self._host,
                    port=self._port,
                    path=self._path,
                    scheme=self._scheme,
                    username=self.username,
                    password=self.password,
                    timeout=http_timeout,
                    verify_ssl=self.verify_ssl,
                    session=self._client,
                    # completeness is checked by check_broker_response, with categories
                    acceptable_respond_fraction=0,
                )
            return self._connection.cursor()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(pinot_exceptions.Error):
                    self._connection.close()
            if self._client is not None:
                self._client.close()
            self._connection = None
            self._client = None

    # -- one query -------------------------------------------------------------------------

    @property
    def _query_options(self) -> str:
        return f"timeoutMs={max(1, round(self.timeout_s * 1000))}"

    def _attempt(self, sql: str) -> _Answer:
        try:
            cursor = self._cursor()
        except pinot_exceptions.Error as exc:
            raise _QueryFailed(SOURCE_UNAVAILABLE, f"pinotdb: {exc}") from exc
        where = f"{self._scheme}://{self._host}:{self._port}{self._path}"
        raised: Exception | None = None
        try:
            cursor.execute(sql, queryOptions=self._query_options)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _QueryFailed(SOURCE_UNAVAILABLE, f"cannot connect to {where}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise _QueryFailed(
                TIMEOUT, f"no answer within {self.timeout_s + self.http_grace_s:g} s from {where}"
            ) from exc
        except httpx.HTTPError as exc:
            raise _QueryFailed(
                SOURCE_UNAVAILABLE, f"HTTP error talking to {where}: {exc!r}"
            ) from exc
        except pinot_exceptions.Error as exc:
            raised = exc
        raw = cursor.raw_query_response
        if raw is None:
            raise _QueryFailed(QUERY_ERROR, f"pinotdb: {raised}")
        answer = check_broker_response(int(raw.get("status_code", 0)), raw.get("response"))
        if raised is not None and (answer.rows or answer.columns):
            raise _QueryFailed(QUERY_ERROR, f"pinotdb rejected the answer: {raised}")
        return answer

    def _execute(self, sql: str, counters: _Counters) -> _Answer:
        """Run one query with retries of the retryable failures (tenacity: exponential
        back-off ``backoff_s * 2**n`` with a 0.5..1.5 jitter, ``retries`` at most)."""

        def attempt() -> _Answer:
            counters.queries += 1
            return self._attempt(sql)

        def wait(state: tenacity.RetryCallState) -> float:
            return float(
                self.backoff_s * (2 ** (state.attempt_number - 1)) * self._rng.uniform(0.5, 1.5)
            )

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            counters.retries += 1
            log.warning(
                "pinot query failed (%s: %s); retry %d/%d in %.2f s",
                getattr(failure, "category", "?"),
                getattr(failure, "message", failure),
                state.attempt_number,
                self.retries,
                state.upcoming_sleep,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, _QueryFailed) and exc.retryable
            ),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)

    # -- schema ----------------------------------------------------------------------------

    def _discover(self, counters: _Counters) -> list[tuple[str, str]]:
        answer = self._execute(f"SELECT * FROM {quote_identifier(self.table)} LIMIT 1", counters)
        present = set(answer.columns)
        if not present:  # empty table without schema: trust the configured mapping
            return [(c, p) for c, p in self.columns.items()]
        missing = [
            f"{c} (column {p!r})"
            for c, p in self.columns.items()
            if c in REQUIRED_COLUMNS and p not in present
        ]
        if missing:
            raise _QueryFailed(
                QUERY_ERROR,
                f"table {self.table!r} lacks required track columns: {', '.join(missing)}; "
                "set PINOT_COLUMN_MAP",
            )
        return [(c, p) for c, p in self.columns.items() if p in present]

    def _selected_columns(self, counters: _Counters) -> list[tuple[str, str]]:
        if self._selected is None:
            selected = self._discover(counters)
            with self._lock:
                self._selected = selected
        return self._selected

    def ping(self) -> None:
        """Check that the broker answers and the table has the track columns."""
        with _raising_source_error(f"Pinot broker {self.broker_url}, table {self.table!r}"):
            selected = self._discover(_Counters())
        with self._lock:
            self._selected = selected

    # -- paging ----------------------------------------------------------------------------

    def _limit(self) -> int:
        caps = [self.page_size] + [c for c in (self.max_rows, self._row_cap) if c is not None]
        return min(caps)

    def _paged(
        self,
        make_sql: Callable[[int, tuple[int, ...] | None], str],
        key_of: Callable[[list[Any]], tuple[int, ...]],
        counters: _Counters,
    ) -> tuple[list[str], list[str], list[list[Any]]]:
        """All rows of a keyset-paged query; raises :class:`_PagingFailed` on a failed page."""
        rows: list[list[Any]] = []
        columns: list[str] = []
        types: list[str] = []
        after: tuple[int, ...] | None = None
        confirming: int | None = None
        while True:
            limit = self._limit()
            try:
                answer = self._execute(make_sql(limit, after), counters)
            except _QueryFailed as failure:
                raise _PagingFailed(failure, rows, after) from failure
            counters.pages += 1
            n = len(answer.rows)
            if answer.columns:
                columns, types = answer.columns, answer.types
            with self._lock:
                longest_before = self._max_rows_seen
                self._max_rows_seen = max(self._max_rows_seen, n)
                if confirming is not None and n > 0:
                    # the previous short page was cut by the broker: learn its row cap
                    self._row_cap = min(confirming, self._row_cap or confirming)
                    log.warning("pinot broker caps answers at %d rows; paging by it", confirming)
            confirming = None
            if n:
                rows.extend(answer.rows)
                after = key_of(answer.rows[-1])
            if n == 0:
                return columns, types, rows
            if n >= limit or (self._row_cap is not None and n >= self._row_cap):
                continue  # a full page: there may be more
            known_cap = self.max_rows is not None and limit <= self.max_rows
            if known_cap or n < longest_before:
                return columns, types, rows
            confirming = n
            counters.confirmations += 1

    # -- fetch -----------------------------------------------------------------------------

    def _track_sql(
        self,
        selected: list[tuple[str, str]],
        ids: Sequence[int],
        lo: int | None,
        hi: int | None,
    ) -> Callable[[int, tuple[int, ...] | None], str]:
        fid, ts = _key_columns(selected)
        select = ", ".join(quote_identifier(p) for _, p in selected)
        base = [f"{fid} IN ({', '.join(str(int(i)) for i in ids)})"]
        if lo is not None:
            base.append(f"{ts} >= {int(lo)}")
        if hi is not None:
            base.append(f"{ts} < {int(hi)}")
        table = quote_identifier(self.table)

        def make(limit: int, after: tuple[int, ...] | None) -> str:
            where = list(base)
            if after is not None:
                f, t = int(after[0]), int(after[1])
                where.append(f"({fid} > {f} OR ({fid} = {f} AND {ts} > {t}))")
            return (
                f"SELECT {select} FROM {table} WHERE {' AND '.join(where)} "
                f"ORDER BY {fid}, {ts} LIMIT {int(limit)}"
            )

        return make

    def _frame(
        self, selected: list[tuple[str, str]], columns: list[str], rows: list[list[Any]]
    ) -> tuple[pd.DataFrame, set[int], int]:
        """Rows -> normalised Tracks frame, the flight ids seen raw, rows dropped."""
        attributes = _attributes(selected)
        if not rows:
            return empty_tracks(attributes), set(), 0
        raw = pd.DataFrame(rows, columns=columns)
        rename = {p: c for c, p in selected}
        raw = raw.rename(columns=rename)[[c for c, _ in selected]]
        seen = {
            int(f) for f in pd.unique(pd.to_numeric(raw["flight_id"], errors="coerce").dropna())
        }
        tracks, dropped = normalise_tracks(raw, attributes=attributes)
        return tracks, seen, dropped

    def fetch(
        self,
        flight_ids: Sequence[int],
        *,
        day: dt.date | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> TrackFetchResult:
        ids = sorted(validate_flight_ids(flight_ids))
        lo, hi = resolve_window(day, start, end, max_flight_duration=self.max_flight_duration)
        return self._fetch(ids, lo, hi, _Counters())

    def _fetch(
        self,
        ids: list[int],
        lo: dt.datetime | None,
        hi: dt.datetime | None,
        counters: _Counters,
    ) -> TrackFetchResult:
        t0 = time.perf_counter()
        failures: dict[int, FetchFailure] = {}
        stats: dict[str, Any] = {
            "source": self.name,
            "table": self.table,
            "window": [lo.isoformat() if lo else None, hi.isoformat() if hi else None],
        }

        def done(
            frames: list[pd.DataFrame], attributes: list[str], dropped: int
        ) -> TrackFetchResult:
            tracks = pd.concat(frames, ignore_index=True) if frames else empty_tracks(attributes)
            stats.update(
                rows=len(tracks),
                sentinel_rows_dropped=dropped,
                queries=counters.queries,
                pages=counters.pages,
                retries=counters.retries,
                chunks=counters.chunks,
                confirmations=counters.confirmations,
                row_cap=self._row_cap,
                elapsed_s=round(time.perf_counter() - t0, 4),
            )
            return TrackFetchResult(tracks, dict(sorted(failures.items())), counters.queries, stats)

        if not ids:
            return done([], [], 0)
        try:
            selected = self._selected_columns(counters)
        except _QueryFailed as exc:
            failures.update(dict.fromkeys(ids, FetchFailure(exc.category, exc.message)))
            return done([], [], 0)
        attributes = _attributes(selected)
        lo_ms = epoch_ms(lo) if lo is not None else None
        hi_ms = epoch_ms(hi) if hi is not None else None
        ts_pos = [c for c, _ in selected].index("ts")

        def key_of(row: list[Any]) -> tuple[int, ...]:
            return int(row[0]), _ts_to_ms(row[ts_pos])

        frames: list[pd.DataFrame] = []
        dropped_total = 0
        circuit: _QueryFailed | None = None
        for begin in range(0, len(ids), self.chunk_size):
            chunk = ids[begin : begin + self.chunk_size]
            if circuit is not None:
                failures.update(
                    dict.fromkeys(
                        chunk,
                        FetchFailure(
                            SOURCE_UNAVAILABLE, f"circuit open (not queried): {circuit.message}"
                        ),
                    )
                )
                continue
            counters.chunks += 1
            failure: _QueryFailed | None = None
            boundary: int | None = None  # after a failed page: flights < boundary are complete
            try:
                columns, _types, rows = self._paged(
                    self._track_sql(selected, chunk, lo_ms, hi_ms), key_of, counters
                )
            except _PagingFailed as stop:
                failure, rows, columns = stop.failure, stop.rows, [p for _, p in selected]
                boundary = stop.after[0] if stop.after is not None else None
                if failure.category == SOURCE_UNAVAILABLE:
                    circuit = failure
            tracks, seen, dropped = self._frame(selected, columns, rows)
            dropped_total += dropped
            keep = tracks["flight_id"].isin(chunk)
            if failure is not None:
                keep &= tracks["flight_id"] < boundary if boundary is not None else False
            tracks = tracks[keep]
            frames.append(tracks)
            present = set(pd.unique(tracks["flight_id"]).tolist())
            for f in chunk:  # per flight, not per point
                if f in present:
                    continue
                if failure is not None and (boundary is None or f >= boundary):
                    failures[f] = FetchFailure(failure.category, failure.message)
                elif f in seen:
                    failures[f] = FetchFailure(NOT_FOUND, "only null-sentinel / invalid positions")
                else:
                    failures[f] = FetchFailure(
                        NOT_FOUND, f"no positions in {self.table!r} in the requested window"
                    )
        return done(frames, attributes, dropped_total)

    # -- days ------------------------------------------------------------------------------

    def _first_positions(
        self, fid: str, ts: str, where: list[str], counters: _Counters, *, having: str = ""
    ) -> list[list[Any]]:
        """Rows ``[flight_id, MIN(ts)]`` of the flights with positions matching ``where``
        (``fid``, ``ts``: the quoted key columns), paged by flight id."""
        table = quote_identifier(self.table)
        group = f"GROUP BY {fid}" + (f" HAVING {having}" if having else "")

        def make(limit: int, after: tuple[int, ...] | None) -> str:
            clauses = list(where)
            if after is not None:
                clauses.append(f"{fid} > {int(after[0])}")
            return (
                f"SELECT {fid}, MIN({ts}) FROM {table} WHERE {' AND '.join(clauses)} "
                f"{group} ORDER BY {fid} LIMIT {int(limit)}"
            )

        _cols, _types, rows = self._paged(make, lambda row: (int(row[0]),), counters)
        return rows

    def _day_ids(self, day: dt.date, counters: _Counters) -> list[int]:
        """Flights whose first position (looking back ``max_flight_duration``) is on ``day``;
        raises :class:`TrackSourceError` when the list cannot be read."""
        with _raising_source_error(f"listing the flights of {day}"):
            fid, ts = _key_columns(self._selected_columns(counters))
            d0 = day_start(day)
            lo = epoch_ms(d0 - self.max_flight_duration)
            d_ms, hi = epoch_ms(d0), epoch_ms(d0 + dt.timedelta(days=1))
            rows = self._first_positions(
                fid, ts, [f"{ts} >= {lo}", f"{ts} < {hi}"], counters, having=f"MIN({ts}) >= {d_ms}"
            )
        return sorted({int(r[0]) for r in rows})

    def flight_ids_for_day(self, day: dt.date) -> list[int]:
        return self._day_ids(day, _Counters())

    @property
    def description(self) -> str:
        return f"pinot {self.broker_url} table {self.table}"

    def flight_days(self, flight_ids: Sequence[int]) -> dict[int, dt.date]:
        """Departure day (UTC day of the first position) of each flight found.

        One paged ``GROUP BY`` per ``chunk_size`` flights, without a time filter (the broker
        cannot prune segments by time: use it for a few flights). Raises
        :class:`TrackSourceError` when a query fails.
        """
        ids = sorted(validate_flight_ids(flight_ids))
        out: dict[int, dt.date] = {}
        if not ids:
            return out
        counters = _Counters()
        with _raising_source_error("dating flights"):
            fid, ts = _key_columns(self._selected_columns(counters))
            for begin in range(0, len(ids), self.chunk_size):
                in_list = ", ".join(str(i) for i in ids[begin : begin + self.chunk_size])
                rows = self._first_positions(fid, ts, [f"{fid} IN ({in_list})"], counters)
                for flight_id, first in rows:  # one row per flight
                    stamp = pd.Timestamp(_ts_to_ms(first), unit="ms", tz="UTC")
                    out[int(flight_id)] = stamp.date()
        return out

    def fetch_day(self, day: dt.date) -> TrackFetchResult:
        """Flights departing on ``day`` with their full tracks (up to ``max_flight_duration``
        past midnight). Raises :class:`TrackSourceError` when the flight list cannot be read."""
        counters = _Counters()
        ids = self._day_ids(day, counters)
        d0 = day_start(day)
        result = self._fetch(
            ids, d0, d0 + dt.timedelta(days=1) + self.max_flight_duration, counters
        )
        result.stats["day_flights"] = len(ids)
        return result

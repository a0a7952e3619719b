"""A stand-in Apache Pinot broker for tests: real HTTP on loopback, answers from a DataFrame.

``POST /query/sql`` with ``{"sql": ..., "queryOptions": "k=v;k2=v2"}`` (or ``SET k=v;``
prefixes) is answered the way a Pinot broker answers:

- the response shape: ``resultTable {dataSchema {columnNames, columnDataTypes}, rows}``,
  ``exceptions``, ``numServersQueried``, ``numServersResponded``, ``numDocsScanned``,
  ``totalDocs``, ``timeUsedMs``, ``partialResult``, ``numGroupsLimitReached``...;
- errors are HTTP 200 with an ``exceptions`` list (errorCode 150 SQL parsing, 190 table
  missing, 710 unknown column, 200 execution, 250 execution timeout, 400 broker timeout,
  427 server not responding — the codes of Pinot's ``QueryErrorCode``);
- a selection without ``LIMIT`` gets Pinot's implicit ``LIMIT 10``; an optional row cap
  silently lowers larger limits (like ``pinot.broker.query.response.limit``);
- TIMESTAMP columns are stored as epoch milliseconds (so ``ts >= 1709251200000`` filters work
  as in Pinot) and rendered like ``java.sql.Timestamp``: ``"2024-03-01 12:34:56.0"``;
  non-finite doubles are JSON strings (``"-Infinity"``), missing strings are ``"null"``.

SQL is evaluated by DuckDB over the DataFrame after the table name is swapped, so WHERE /
ORDER BY / GROUP BY / HAVING / LIMIT keep their meaning. Faults are injected per query
(:meth:`StandInPinotBroker.inject`), every query is logged (:attr:`StandInPinotBroker.queries`)
and :meth:`StandInPinotBroker.stop` closes the port and every open connection.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FAULT_KINDS = (
    "sql_error",  # 150 SQLParsingError
    "table_missing",  # 190 TableDoesNotExistError
    "execution_error",  # 200 QueryExecutionError
    "execution_timeout",  # 250 ExecutionTimeoutError (server-side), no rows
    "broker_timeout",  # 400 BrokerTimeoutError, a server missing
    "partial",  # 427 ServerNotRespondingError, responded < queried, partialResult, half the rows
    "servers_short",  # no exception, responded < queried, half the rows
    "partial_flag",  # partialResult true only, half the rows
    "missing_stats",  # numServersQueried / numServersResponded absent
    "http_error",  # HTTP `status` with a plain-text body
    "slow",  # answer after `delay_s` (or a 250 timeout at timeoutMs when honour_timeout)
    "drop_connection",  # close the socket without answering
)
_TABLE_RE = re.compile(r"\bFROM\s+(\"(?:[^\"]|\"\")+\"|[A-Za-z_][\w.]*)", re.IGNORECASE)
_LIMIT_RE = re.compile(r"\bLIMIT\s+(\d+)\s*(,\s*\d+\s*)?;?\s*$", re.IGNORECASE)
_SET_RE = re.compile(r"^\s*SET\s+(\w+)\s*=\s*('[^']*'|[^;\s]+)\s*;", re.IGNORECASE)
_VIEW = "__pinot_table"


@dataclass
class Fault:
    kind: str
    times: int = 1
    match: str | Callable[[str], bool] | None = None
    delay_s: float = 0.0
    status: int = 503
    honour_timeout: bool = False

    def applies(self, sql: str) -> bool:
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(sql))
        return self.match in sql


@dataclass
class QueryLogEntry:
    sql: str
    options: dict[str, str]
    limit: int | None  # as written in the query (None: implicit)
    limit_applied: int | None  # after implicit LIMIT 10 / row cap
    rows: int
    status: int
    fault: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def pinot_type(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "LONG"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP"
    return "STRING"


def format_pinot_timestamps(ms: np.ndarray) -> np.ndarray:
    """Epoch ms -> ``java.sql.Timestamp.toString()`` text (``2024-03-01 12:34:56.0``)."""
    ms = np.asarray(ms, dtype="int64")
    base = pd.to_datetime(ms, unit="ms", utc=True).strftime("%Y-%m-%d %H:%M:%S").to_numpy(str)
    frac = np.char.rstrip(np.char.mod("%03d", ms % 1000), "0")
    frac = np.where(frac == "", "0", frac)
    return np.char.add(np.char.add(base, "."), frac)


class PinotError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StandInPinotBroker:
    """A loopback Pinot broker serving one table (use as a context manager)."""

    def __init__(
        self,
        table: pd.DataFrame,
        *,
        table_name: str = "flight_positions",
        column_types: dict[str, str] | None = None,
        max_rows: int | None = None,
        num_servers: int = 2,
        required_authorization: str | None = None,
    ) -> None:
        self.table_name = table_name
        self.max_rows = max_rows
        self.num_servers = num_servers
        self.required_authorization = required_authorization
        self.queries: list[QueryLogEntry] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._db = duckdb.connect(":memory:", config={"threads": 1})
        self.set_table(table, column_types=column_types)

    # -- data ------------------------------------------------------------------------------

    def set_table(self, table: pd.DataFrame, *, column_types: dict[str, str] | None = None) -> None:
        """Serve ``table``; datetime columns become TIMESTAMP (stored as epoch ms)."""
        types = {c: pinot_type(table[c].dtype) for c in table.columns}
        types.update(column_types or {})
        stored = {}
        for name in table.columns:
            col = table[name]
            if pd.api.types.is_datetime64_any_dtype(col.dtype):
                if getattr(col.dt, "tz", None) is None:
                    col = col.dt.tz_localize("UTC")
                stored[name] = (
                    col.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64")
                )
            elif types[name] == "STRING":
                stored[name] = col.astype(object).where(col.notna(), None)
            else:
                stored[name] = col
        frame = pd.DataFrame(stored)
        with self._db_lock:
            self._db.register("__frame", frame)
            self._db.execute(f'CREATE OR REPLACE TEMP TABLE "{_VIEW}" AS SELECT * FROM __frame')
            self._db.unregister("__frame")
        self.column_types = types
        self.total_docs = len(frame)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "broker not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None, "broker not started"
        return int(self._server.server_address[1])

    def start(self) -> StandInPinotBroker:
        broker = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def process_request(self, request: Any, client_address: Any) -> None:
                with broker._lock:
                    broker._sockets.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                with broker._lock:
                    broker._sockets.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out and hang up are expected in tests

        self._server = Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (later connects are refused)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def close(self) -> None:
        self.stop()
        self._db.close()

    def __enter__(self) -> StandInPinotBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults and log --------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        times: int = 1,
        *,
        match: str | Callable[[str], bool] | None = None,
        delay_s: float = 0.0,
        status: int = 503,
        honour_timeout: bool = False,
    ) -> None:
        """The next ``times`` queries (whose SQL contains ``match``) fail with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(Fault(kind, times, match, delay_s, status, honour_timeout))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset_log(self) -> None:
        with self._lock:
            self.queries.clear()

    def _take_fault(self, sql: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.applies(sql):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _log(self, entry: QueryLogEntry) -> None:
        with self._lock:
            self.queries.append(entry)

    # -- query evaluation ------------------------------------------------------------------

    def _stats(self, *, rows: int, t0: float, responded: int | None = None) -> dict[str, Any]:
        servers = self.num_servers
        return {
            "exceptions": [],
            "numServersQueried": servers,
            "numServersResponded": servers if responded is None else responded,
            "numSegmentsQueried": servers * 2,
            "numSegmentsProcessed": servers * 2,
            "numSegmentsMatched": servers * 2 if rows else 0,
            "numConsumingSegmentsQueried": 0,
            "numDocsScanned": rows,
            "numEntriesScannedInFilter": 0,
            "numEntriesScannedPostFilter": rows,
            "numGroupsLimitReached": False,
            "maxRowsInJoinReached": False,
            "totalDocs": self.total_docs,
            "timeUsedMs": int((time.perf_counter() - t0) * 1000),
            "offlineThreadCpuTimeNs": 0,
            "realtimeThreadCpuTimeNs": 0,
            "minConsumingFreshnessTimeMs": 0,
            "numRowsResultSet": rows,
            "partialResult": False,
            "requestId": str(uuid.uuid4().int % 10**12),
            "brokerId": "Broker_stand-in_8099",
        }

    def _error(self, code: int, message: str, t0: float, *, servers: int = 0) -> dict[str, Any]:
        """An error answer; ``servers`` queried and responded (0 for broker-side errors)."""
        body = self._stats(rows=0, t0=t0, responded=servers)
        body["numServersQueried"] = servers
        body["exceptions"] = [{"errorCode": code, "message": message}]
        return body

    def _evaluate(self, sql: str) -> tuple[list[str], list[str], list[list[Any]], int | None, int]:
        """Run a Pinot SELECT; returns columns, types, rows, written limit, applied limit."""
        text = sql.strip().rstrip(";").strip()
        if not re.match(r"^SELECT\b", text, re.IGNORECASE):
            raise PinotError(150, f"SQLParsingError:\nonly SELECT is supported: {text[:80]}")
        table_match = _TABLE_RE.search(text)
        if table_match is None:
            raise PinotError(150, "SQLParsingError:\nno FROM clause")
        raw_name = table_match.group(1)
        name = raw_name[1:-1].replace('""', '"') if raw_name.startswith('"') else raw_name
        if name != self.table_name:
            raise PinotError(190, f"TableDoesNotExistError:\nUnknown table: {name}")
        text = text[: table_match.start(1)] + f'"{_VIEW}"' + text[table_match.end(1) :]
        limit_match = _LIMIT_RE.search(text)
        if limit_match is not None and limit_match.group(2):
            raise PinotError(150, "SQLParsingError:\nLIMIT offset, n is not supported here")
        written = int(limit_match.group(1)) if limit_match else None
        applied = 10 if written is None else written
        if self.max_rows is not None:
            applied = min(applied, self.max_rows)
        if limit_match is not None:
            text = text[: limit_match.start()] + f"LIMIT {applied}"
        else:
            text = f"{text} LIMIT {applied}"
        try:
            with self._db_lock:
                frame = self._db.execute(text).fetchdf()
        except duckdb.ParserException as exc:
            raise PinotError(150, f"SQLParsingError:\n{exc}") from exc
        except duckdb.BinderException as exc:
            raise PinotError(710, f"UnknownColumnError:\n{exc}") from exc
        except duckdb.Error as exc:
            raise PinotError(200, f"QueryExecutionError:\n{exc}") from exc
        columns = [str(c) for c in frame.columns]
        types: list[str] = []
        encoded: list[list[Any]] = []
        for name in columns:
            col = frame[name]
            kind = self.column_types.get(name)
            if kind is None:  # an expression: Pinot aggregates are DOUBLE, COUNT is LONG
                if name.lower().startswith("count("):
                    kind = "LONG"
                elif "(" in name:
                    kind = "DOUBLE"
                else:
                    kind = pinot_type(col.dtype)
            types.append(kind)
            encoded.append(_encode(col, kind))
        rows = [list(r) for r in zip(*encoded, strict=True)] if columns else []
        return columns, types, rows, written, applied

    def answer(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any, Fault | None]:
        """HTTP status and JSON (or text) of one query."""
        t0 = time.perf_counter()
        sql = str(body.get("sql", ""))
        options: dict[str, str] = {}
        for part in str(body.get("queryOptions") or "").split(";"):
            if "=" in part:
                key, value = part.split("=", 1)
                options[key.strip()] = value.strip()
        while (set_match := _SET_RE.match(sql)) is not None:
            options[set_match.group(1)] = set_match.group(2).strip("'")
            sql = sql[set_match.end() :]
        entry = QueryLogEntry(
            sql=sql,
            options=options,
            limit=None,
            limit_applied=None,
            rows=0,
            status=200,
            headers=headers,
        )
        if self.required_authorization is not None and (
            headers.get("authorization") != self.required_authorization
        ):
            entry.status = 401
            self._log(entry)
            return 401, {"code": 401, "error": "HTTP 401 Unauthorized"}, None

        fault = self._take_fault(sql)
        entry.fault = fault.kind if fault else None
        timeout_ms = float(options.get("timeoutMs", "10000"))
        if fault is not None and fault.kind == "slow":
            if fault.honour_timeout and fault.delay_s * 1000 > timeout_ms:
                time.sleep(timeout_ms / 1000)
                self._log(entry)
                return (
                    200,
                    self._error(
                        250, "ExecutionTimeoutError:\nQuery timed out", t0, servers=self.num_servers
                    ),
                    fault,
                )
            time.sleep(fault.delay_s)
        if fault is not None and fault.kind == "drop_connection":
            self._log(entry)
            return -1, None, fault
        if fault is not None and fault.kind == "http_error":
            entry.status = fault.status
            self._log(entry)
            return fault.status, "<html><body>stand-in broker error</body></html>", fault
        simple_errors = {
            "sql_error": (150, "SQLParsingError:\ninjected"),
            "table_missing": (190, f"TableDoesNotExistError:\nUnknown table: {self.table_name}"),
            "execution_error": (200, "QueryExecutionError:\ninjected"),
            "execution_timeout": (250, "ExecutionTimeoutError:\nQuery timed out"),
        }
        if fault is not None and fault.kind in simple_errors:
            code, message = simple_errors[fault.kind]
            self._log(entry)
            return 200, self._error(code, message, t0, servers=self.num_servers), fault

        try:
            columns, types, rows, written, applied = self._evaluate(sql)
        except PinotError as exc:
            self._log(entry)
            return 200, self._error(exc.code, exc.message, t0), fault
        entry.limit, entry.limit_applied = written, applied
        body_out = self._stats(rows=len(rows), t0=t0)
        if fault is not None and fault.kind in (
            "partial",
            "servers_short",
            "partial_flag",
            "broker_timeout",
        ):
            rows = rows[: len(rows) // 2]
            if fault.kind != "partial_flag":
                body_out["numServersResponded"] = self.num_servers - 1
            if fault.kind in ("partial", "partial_flag", "broker_timeout"):
                body_out["partialResult"] = True
            if fault.kind == "partial":
                body_out["exceptions"] = [
                    {
                        "errorCode": 427,
                        "message": "ServerNotRespondingError:\n1 servers [Server_10.0.0.2_8098] "
                        "not responded",
                    }
                ]
            if fault.kind == "broker_timeout":
                body_out["exceptions"] = [
                    {"errorCode": 400, "message": "BrokerTimeoutError:\nQuery timed out"}
                ]
        if fault is not None and fault.kind == "missing_stats":
            del body_out["numServersQueried"], body_out["numServersResponded"]
        body_out["resultTable"] = {
            "dataSchema": {"columnNames": columns, "columnDataTypes": types},
            "rows": rows,
        }
        body_out["numRowsResultSet"] = len(rows)
        entry.rows = len(rows)
        self._log(entry)
        return 200, body_out, fault


def _encode(col: pd.Series, kind: str) -> list[Any]:
    """Column values as a Pinot broker puts them in JSON."""
    if kind == "TIMESTAMP" and pd.api.types.is_integer_dtype(col.dtype):
        return format_pinot_timestamps(col.to_numpy()).tolist()
    if kind in ("DOUBLE", "FLOAT"):
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        out = values.astype(object)  # Python floats; Jackson writes non-finite as strings
        out[np.isnan(values)] = "NaN"
        out[values == np.inf] = "Infinity"
        out[values == -np.inf] = "-Infinity"
        return out.tolist()
    if kind in ("LONG", "INT"):
        values = pd.to_numeric(col, errors="coerce")
        return values.fillna(-(2**63)).astype("int64").tolist()  # Long.MIN_VALUE = null
    if kind == "BOOLEAN":
        return col.astype(bool).tolist()
    return col.astype(object).where(col.notna(), "null").astype(str).tolist()


def _make_handler(broker: StandInPinotBroker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, payload: Any) -> None:
            is_json = not isinstance(payload, str)
            data = (json.dumps(payload, allow_nan=False) if is_json else payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if is_json else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                self._send(200, "OK")
            else:
                self._send(404, {"code": 404, "error": "HTTP 404 Not Found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0] != "/query/sql":
                self._send(404, {"code": 404, "error": "HTTP 404 Not Found"})
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, {"code": 400, "error": "malformed JSON"})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, _fault = broker.answer(body, headers)
            if status == -1:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            try:
                self._send(status, payload)
            except OSError:
                self.close_connection = True  # the client gave up (timeout)

    return Handler


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_broker(table: pd.DataFrame, **kwargs: Any) -> Iterator[StandInPinotBroker]:
    broker = StandInPinotBroker(table, **kwargs)
    with broker:
        yield broker


# -- test data -----------------------------------------------------------------------------------

T0 = pd.Timestamp("2024-03-01 10:00:00", tz="UTC")


def synthetic_positions(
    flights: dict[int, int] | list[int],
    *,
    points: int = 40,
    start: pd.Timestamp = T0,
    step_s: float = 5.0,
    stagger_s: float = 60.0,
) -> pd.DataFrame:
    """Plausible tracks: each flight circles at 450 kt (radius 1 degree), one per flight id.

    ``flights`` maps flight id -> number of points, or lists ids (``points`` each). Flight
    ``k`` (in order) starts ``k * stagger_s`` after ``start``. Times have millisecond parts.
    """
    sizes = flights if isinstance(flights, dict) else dict.fromkeys(flights, points)
    ids = np.fromiter(sizes.keys(), dtype=np.int64)
    counts = np.fromiter(sizes.values(), dtype=np.int64)
    fid = np.repeat(ids, counts)
    k = np.arange(fid.size) - np.repeat(np.cumsum(counts) - counts, counts)  # index in flight
    order = np.repeat(np.arange(ids.size), counts)
    offset_ms = np.round((order * stagger_s + k * step_s) * 1000).astype(np.int64) + 123
    radius_deg = 1.0
    theta = k * step_s * 450.0 / 3600.0 / (radius_deg * 60.0)  # radians flown around the circle
    centre_lat = 40.0 + (order % 7)
    lat = centre_lat + radius_deg * np.cos(theta)
    lon = 2.0 + (order % 11) + radius_deg * np.sin(theta) / np.cos(np.radians(centre_lat))
    return pd.DataFrame(
        {
            "flight_id": fid,
            "ts": start + pd.to_timedelta(offset_ms, unit="ms"),
            "lat": lat,
            "lon": lon,
            "alt_ft": 35_000.0 + (k % 3) * 25.0,
            "callsign": pd.Series([f"TST{f}" for f in fid], dtype=object),
            "registration": "D-AIPA",
            "aircraft_type": "A320",
            "icao24": "3c6444",
            "origin": "EDDF",
            "destination": "LFPG",
        }
    )


def write_parquet_store(frame: pd.DataFrame, root: Path | str, *, files_per_day: int = 1) -> None:
    """Write ``frame`` as ``<root>/day=YYYY-MM-DD/part-N.parquet``, each flight in the
    partition of the day of its first position (``ts`` as timestamp[us, tz=UTC])."""
    root = Path(root)
    frame = frame.copy()
    frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
    first = frame.groupby("flight_id")["ts"].transform("min")
    frame["_day"] = first.dt.strftime("%Y-%m-%d")
    for day, part in frame.groupby("_day", sort=True):
        folder = root / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part = part.drop(columns="_day")
        ids = np.sort(part["flight_id"].unique())
        for n, chunk in enumerate(np.array_split(ids, files_per_day)):
            rows = part[part["flight_id"].isin(chunk)]
            pq.write_table(
                pa.Table.from_pandas(rows, preserve_index=False), folder / f"part-{n}.parquet"
            )

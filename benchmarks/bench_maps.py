"""Flight maps on demand: how long a map takes to open, cold and warm, and how big it is.

    python benchmarks/bench_maps.py                       # demo of 60 flights in a temp home
    python benchmarks/bench_maps.py --home .flight_fees   # an existing home (after make demo)
    python benchmarks/bench_maps.py --json out.json --no-browser

Starts ``flight-fees serve`` on a free loopback port over the home and measures, per billed
flight, over HTTP (client wall time):

- **first**: the first map request right after the server answers /health (the FIR set and
  index are still loading in the background);
- **cold**: the first open of a flight's map (nothing cached: billing-database read, track and
  crossings from the work store, render, cache write);
- **warm**: the same map again (served from the on-disk cache);
- **country cold**: the first per-country map of the flight (on demand only);
- **fallback cold**: cold again after the work store is gone (pruned after 14 days): track
  from the track source, crossings recomputed with the FIR index;
- **browser**: with Debian's chromium (Playwright, network cut to loopback), navigation start
  to the map drawn (``body[data-ff-map=ready]``), cold and warm, on ``--browser-flights``.

Bytes: the HTML of each map (the Leaflet / basemap / script files are static and cached by the
browser: counted once). The "before" figures (folium in ``process_flights``) are in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def _get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url)
    return time.perf_counter() - started, response


def _flights(client: httpx.Client, base: str) -> list[int]:
    days = re.findall(r'href="/maps/(\d{4}-\d{2}-\d{2})/"', client.get(f"{base}/maps/").text)
    ids: list[int] = []
    for day in days:
        page = client.get(f"{base}/maps/{day}/").text
        ids += [int(x) for x in re.findall(r'<td><a href="/maps/flight/(\d+)">', page)]
    return sorted(set(ids))


def _browser_times(base: str, ids: list[int], cache_dir: Path) -> dict[str, dict[str, float]]:
    from urllib.parse import urlparse

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        return {}
    out: dict[str, list[float]] = {"browser_cold": [], "browser_warm": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route(
            "**/*",
            lambda r: (
                r.continue_()
                if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost")
                else r.abort()
            ),
        )
        page = context.new_page()
        page.goto(f"{base}/")  # the static files get cached like a user's browser would
        shutil.rmtree(cache_dir, ignore_errors=True)
        for kind in ("browser_cold", "browser_warm"):
            for fid in ids:
                page.goto(f"{base}/maps/flight/{fid}")
                page.wait_for_selector("body[data-ff-map=ready]", timeout=30_000)
                out[kind].append(page.evaluate("performance.now()") / 1000.0)
        browser.close()
    return {k: _stats(v) for k, v in out.items()}


def run(home: Path, *, browser_flights: int, browser: bool) -> dict:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FLIGHT_FEES_HOME": str(home), "FLIGHT_FEES_PUBLIC_URL": base}
    server = subprocess.Popen(
        [str(BIN / "flight-fees"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cache_dir = home / "maps" / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    results: dict = {}
    try:
        client = httpx.Client(timeout=60)
        started = time.perf_counter()
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base}/health").status_code == 200:
                    break
            if time.perf_counter() - started > 60:
                raise RuntimeError("flight-fees serve did not start")
            time.sleep(0.1)
        results["server_start_s"] = round(time.perf_counter() - started, 2)
        ids = _flights(client, base)
        if not ids:
            raise RuntimeError(f"no billed flight in {home}")
        first, response = _get(client, f"{base}/maps/flight/{ids[0]}")
        assert response.status_code == 200, response.text
        results["first_request_after_start_ms"] = round(first * 1000, 1)
        shutil.rmtree(cache_dir, ignore_errors=True)
        cold, warm, country, sizes, server_cold = [], [], [], [], []
        for fid in ids:
            t, r = _get(client, f"{base}/maps/flight/{fid}")
            assert r.status_code == 200 and r.headers["x-flight-fees-map"] == "rendered"
            cold.append(t)
            sizes.append(len(r.content))
            server_cold.append(float(r.headers["server-timing"].split("dur=")[1]) / 1000)
            t, r2 = _get(client, f"{base}/maps/flight/{fid}")
            assert r2.headers["x-flight-fees-map"] == "cached"
            warm.append(t)
            links = re.findall(r'href="(/maps/flight/\d+/[^"]+)"', r.text)
            if links:
                t, r3 = _get(client, base + links[0])
                assert r3.status_code == 200
                country.append(t)
        work = home / "work"
        fallback: list[float] = []
        if work.is_dir():
            parked = home / "work.bench-parked"
            work.rename(parked)
            try:
                shutil.rmtree(cache_dir, ignore_errors=True)
                for fid in ids:
                    t, r = _get(client, f"{base}/maps/flight/{fid}")
                    assert r.status_code == 200 and "recomputed" in r.text
                    fallback.append(t)
            finally:
                parked.rename(work)
        static = sum(
            len(client.get(f"{base}/static/{name}").content)
            for name in (
                "leaflet/leaflet.js",
                "leaflet/leaflet.css",
                "basemap/countries-110m.js",
                "flight_map.js",
            )
        )
        results.update(
            flights=len(ids),
            cold=_stats(cold),
            cold_server=_stats(server_cold),
            warm=_stats(warm),
            country_cold=_stats(country),
            fallback_cold=_stats(fallback),
            bytes_per_map={
                "median": int(statistics.median(sizes)),
                "max": max(sizes),
                "files_per_map": 1,
            },
            static_bytes_once=static,
        )
        if browser:
            results.update(_browser_times(base, ids[:browser_flights], cache_dir))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="existing FLIGHT_FEES_HOME (after a demo)")
    parser.add_argument("--flights", type=int, default=60, help="demo flights without --home")
    parser.add_argument("--browser-flights", type=int, default=10)
    parser.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_maps_") as tmp:
        home = args.home
        if home is None:
            home = Path(tmp) / "home"
            env = {
                **os.environ,
                "FLIGHT_FEES_HOME": str(home),
                "DAGSTER_HOME": str(Path(tmp) / "dagster"),
            }
            started = time.perf_counter()
            subprocess.run(
                [str(BIN / "flight-fees"), "demo", "--flights", str(args.flights)],
                env=env,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"demo of {args.flights} flights: {time.perf_counter() - started:.1f} s")
        results = run(home.resolve(), browser_flights=args.browser_flights, browser=args.browser)
    results["load_avg"] = os.getloadavg()
    print(f"{'measure':<30} {'n':>4} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for key in (
        "cold",
        "cold_server",
        "warm",
        "country_cold",
        "fallback_cold",
        "browser_cold",
        "browser_warm",
    ):
        s = results.get(key) or {}
        if s:
            print(f"{key:<30} {s['n']:>4} {s['median_ms']:>10} {s['p95_ms']:>8} {s['max_ms']:>8}")
    print(f"first request after start: {results['first_request_after_start_ms']} ms")
    print(
        f"bytes per map: median {results['bytes_per_map']['median']:,}, max "
        f"{results['bytes_per_map']['max']:,} (1 file); static assets once: "
        f"{results['static_bytes_once']:,}"
    )
    print(f"load average: {results['load_avg']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

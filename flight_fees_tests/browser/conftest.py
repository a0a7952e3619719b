"""Real-browser fixtures: Debian's chromium driven by Playwright, a demo home, the document
server and the Dagster UI, each on a free loopback port, all stopped at the end.

Chromium is Debian's (``apt-get install chromium``), never a browser downloaded by Playwright.
Without it the browser tests are skipped, except under ``CI=true`` where they fail (``.ci/run``
installs it). Every page runs with the network cut to loopback: any other request is aborted
and recorded, so a map that needs the internet fails here. Screenshots go to
``test-artifacts/browser/`` (gitignored).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
BIN = Path(sys.executable).parent
#: the demo: two days ending on a month end (weekly and monthly invoices)
DEMO_ARGS = ["--flights", "6", "--start", "2026-10-30", "--days", "2", "--seed", "7"]
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def chromium_executable() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium and the Playwright driver, or skip (fail under CI=true)."""
    reasons = []
    path = chromium_executable()
    if path is None:
        reasons.append("no chromium on PATH (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("playwright is not installed (pip install -e '.[dev]')")
    if reasons:
        message = "browser tests need " + "; ".join(reasons)
        if _in_ci():
            pytest.fail(f"{message}; they cannot be skipped under CI=true", pytrace=False)
        pytest.skip(message)
    return str(path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its children (by process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({process.returncode}): {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s: {log.read_text()[-2000:]}")


@dataclass
class DemoWorld:
    home: Path
    dagster_home: Path
    env: dict[str, str]
    docs_url: str
    docs_port: int
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, args: list[str], health_url: str, timeout_s: float) -> None:
        log = self.home.parent / f"{name}.log"
        handle = log.open("w")
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        _wait_http(health_url, process, log, timeout_s)


@pytest.fixture(scope="session")
def demo_world(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWorld]:
    """A small demo (6 flights, 2 days, invoices) in a temp home and Dagster instance, and the
    document server on a free loopback port (the URLs in the demo's metadata point at it)."""
    base = tmp_path_factory.mktemp("browser")
    home, dagster_home = base / "home", base / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLIGHT_FEES_", "PINOT_", "DAGSTER_")) or k == "FLIGHT_FEES_CACHE_DIR"
    }
    env.update(
        FLIGHT_FEES_HOME=str(home),
        DAGSTER_HOME=str(dagster_home),
        FLIGHT_FEES_PUBLIC_URL=f"http://127.0.0.1:{port}",
        FLIGHT_FEES_RUN_LOG_LEVEL="ERROR",
    )
    demo = subprocess.run(
        [str(BIN / "flight-fees"), "demo", *DEMO_ARGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    world = DemoWorld(home, dagster_home, env, f"http://127.0.0.1:{port}", port)
    try:
        world.start(
            "serve",
            [str(BIN / "flight-fees"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            f"{world.docs_url}/health",
            60,
        )
        yield world
    finally:
        for process in reversed(world.processes):
            _stop(process)


@pytest.fixture(scope="session")
def dagster_ui(demo_world: DemoWorld) -> str:
    """dagster-webserver over the demo's instance on a free loopback port (stopped at the
    end of the session with the other processes)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    demo_world.start(
        "dagster-webserver",
        [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        f"{url}/server_info",
        150,
    )
    return url


@dataclass
class OfflineBrowser:
    """A Chromium context whose network stops at loopback; ``blocked`` lists what the pages
    tried to fetch elsewhere."""

    context: object
    blocked: list[str]

    def new_page(self):  # type: ignore[no-untyped-def]
        return self.context.new_page()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def offline(browser) -> Iterator[OfflineBrowser]:  # type: ignore[no-untyped-def]
    blocked: list[str] = []

    def guard(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in _LOOPBACK:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    context.set_default_timeout(30_000)
    context.route("**/*", guard)
    try:
        yield OfflineBrowser(context, blocked)
    finally:
        context.close()


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path

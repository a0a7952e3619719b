"""Credentials are never printed: every output of commands and of a pipeline run made with
credentials in the environment is searched for them.

The secrets below are set in ``PINOT_HTTP_BROKER_URL`` (user:password), ``PINOT_PASSWORD`` /
``PINOT_BEARER_TOKEN``, ``FLIGHT_FEES_DATABASE_URL`` (user:password) and
``FLIGHT_FEES_INTAKE_SECRET``; the outputs are CLI stdout/stderr, exception messages, reprs,
Python log records, the Dagster event log and the materialization metadata.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging

import dagster as dg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.core.redact import environment_secrets, mask_url, redact
from flight_fees.lib.db import make_engine
from flight_fees.lib.tracks import PinotTrackSource, make_track_source
from flight_fees_tests.pinot_broker import StandInPinotBroker, closed_port, synthetic_positions

BROKER_PW = "Br0ker-pw-7f3e91"
DB_PW = "Db-pw-c81d55e2"
TOKEN = "tok-9a7c1e5f3b"
INTAKE = "intake-secret-4e8b2d6f0a"
SECRETS = (BROKER_PW, DB_PW, TOKEN, INTAKE)


def _assert_clean(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"{secret!r} leaked in: {str(text)[:500]}"


def test_mask_url_and_redact():
    assert (
        mask_url("see http://admin:PW@host:8099/q and x")
        == "see http://admin:***@host:8099/q and x"
    )
    assert mask_url("postgresql+psycopg2://u:p@ss@h/db") == "postgresql+psycopg2://u:***@h/db"
    assert mask_url("http://host:8099 https://user@host") == "http://host:8099 https://user@host"
    assert redact("token tok-123456 http://a:b@c", ["tok-123456"]) == "token *** http://a:***@c"
    env = {
        "PINOT_HTTP_BROKER_URL": "http://admin:p%40ss-word@h",
        "PINOT_PASSWORD": "pinot-password",
        "FLIGHT_FEES_DATABASE_URL": "postgresql://u:dbpass@h/db",
    }
    assert set(environment_secrets(env)) == {"p%40ss-word", "p@ss-word", "pinot-password", "dbpass"}


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv(
        "PINOT_HTTP_BROKER_URL", f"http://admin:{BROKER_PW}@127.0.0.1:{closed_port()}"
    )
    monkeypatch.setenv(
        "FLIGHT_FEES_DATABASE_URL", f"postgresql://ff:{DB_PW}@127.0.0.1:1/none?connect_timeout=2"
    )
    monkeypatch.setenv("FLIGHT_FEES_INTAKE_SECRET", INTAKE)
    monkeypatch.setenv("PINOT_TIMEOUT_S", "2")
    monkeypatch.setenv("PINOT_RETRIES", "0")


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result, result.output + str(result.exception or "")


def test_doctor_with_unreachable_services_prints_no_secret(secret_env, caplog):
    caplog.set_level(logging.DEBUG)
    result, output = _run("doctor")
    assert result.exit_code == 1
    assert "admin:***@127.0.0.1" in output  # the URL is shown, masked
    _assert_clean(output, *(r.getMessage() for r in caplog.records))


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://admin:{BROKER_PW}@host",
        f"http://admin:{BROKER_PW}@host:notaport",
        f"http://admin:{BROKER_PW}@",
    ],
)
def test_url_validation_errors_print_no_secret(secret_env, monkeypatch, url):
    monkeypatch.setenv("PINOT_HTTP_BROKER_URL", url)
    with pytest.raises(ValueError) as info:
        make_track_source("pinot")
    _assert_clean(info.value)
    assert "***" in str(info.value)
    result, output = _run("doctor")
    assert result.exit_code == 1 and "misconfigured" in output
    _assert_clean(output)
    result, output = _run("tracks", "1", "--day", "2024-03-01", "--source", "pinot")
    assert result.exit_code == 2
    _assert_clean(output)


def test_credentials_in_the_url_authenticate_and_stay_hidden(secret_env, monkeypatch):
    positions = synthetic_positions([101])
    expected = "Basic " + base64.b64encode(f"admin:{BROKER_PW}".encode()).decode()
    with StandInPinotBroker(positions, required_authorization=expected) as broker:
        url = broker.url.replace("http://", f"http://admin:{BROKER_PW}@")
        monkeypatch.setenv("PINOT_HTTP_BROKER_URL", url)
        source = make_track_source("pinot")
        assert isinstance(source, PinotTrackSource)
        _assert_clean(repr(source), source.description, source.broker_url)
        source.ping()  # the broker accepted the URL's credentials
        assert source.fetch([101], day=dt.date(2024, 3, 1)).failures == {}
        source.close()
        result, output = _run("tracks", "101", "--day", "2024-03-01", "--source", "pinot")
        assert result.exit_code == 0, output
        _assert_clean(output)
    with pytest.raises(ValueError, match="not both"):
        PinotTrackSource(url, bearer_token=TOKEN)


def test_database_errors_print_no_password(secret_env):
    engine = make_engine()
    from flight_fees.lib.db.health import check_schema

    state = check_schema(engine)
    assert not state.ok
    _assert_clean(state.detail, state.error, repr(engine), engine.url)
    result, output = _run("queue")
    assert result.exit_code != 0
    _assert_clean(output)
    engine.dispose()


@pytest.mark.postgres
def test_a_pipeline_run_with_credentials_leaks_nothing(
    postgres_database_url, monkeypatch, caplog, capfd, secret_env
):
    """``process_flights`` assets against a broker needing the URL's credentials and a database
    URL with a password: logs, events and metadata hold no secret."""
    from flight_fees.defs.processing.assets import flight_tracks
    from flight_fees.defs.resources import (
        BillingDatabase,
        PipelineSettings,
        TrackStore,
        Workspace,
    )
    from flight_fees.lib.db import upgrade
    from flight_fees.lib.ops.queue import FlightQueue

    caplog.set_level(logging.DEBUG)
    db_url = make_url(postgres_database_url).set(password=DB_PW).render_as_string(False)
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)  # trust auth ignores the password
    engine = make_engine(db_url)
    upgrade(engine)
    day = dt.date(2024, 3, 1)
    positions = synthetic_positions([101, 102])
    expected = "Basic " + base64.b64encode(f"admin:{BROKER_PW}".encode()).decode()
    with StandInPinotBroker(positions, required_authorization=expected) as broker:
        monkeypatch.setenv(
            "PINOT_HTTP_BROKER_URL", broker.url.replace("http://", f"http://admin:{BROKER_PW}@")
        )
        FlightQueue(engine).enqueue([101, 102, 999], flight_date=day)
        broker.inject("broker_timeout", times=1, match=lambda sql: "999" in sql)
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [flight_tracks],
                partition_key=day.isoformat(),
                run_config={"ops": {"flight_tracks": {"config": {"flight_ids": [101, 102, 999]}}}},
                resources={
                    "billing": BillingDatabase(url=db_url),
                    "track_store": TrackStore(kind="pinot"),
                    "workspace": Workspace(),
                    "settings": PipelineSettings(render_maps=False),
                },
                instance=instance,
                raise_on_error=False,
            )
            events = [str(e) for e in instance.all_logs(result.run_id)]
        metadata = [
            str(m.metadata) for m in result.asset_materializations_for_node("flight_tracks")
        ]
        result2, output = _run("doctor")
    assert result.success
    assert metadata and events
    out, err = capfd.readouterr()
    _assert_clean(*events, *metadata, out, err, output, *(r.getMessage() for r in caplog.records))
    engine.dispose()

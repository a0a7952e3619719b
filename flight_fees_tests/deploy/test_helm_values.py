"""The Kubernetes deployment files (docs/DEPLOYMENT.md): ``deploy/helm/values.yaml`` checked
against the values schema of Dagster's official chart (vendored in ``deploy/helm``, see its
NOTICE.md), and the user-code ``Dockerfile``.

Helm merges a values file over the chart's own defaults, so a field this file leaves out comes
from the chart: the schema is applied without its ``required`` lists, except to the items of a
list (Helm replaces lists whole, so each item must be complete). Every field set must exist in
the schema (a typo is an error even where the chart's schema allows extra keys). The chart's
references to Kubernetes object schemas (kubernetesjsonschema.dev: env sources, resources,
probes) are not fetched: those objects are checked as the chart's own declarations say
(object, map of strings, list), not field by field.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from flight_fees.lib.core import settings

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
VALUES = HELM / "values.yaml"
SCHEMA = HELM / "dagster-values.schema.json"


def _without_remote_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _without_remote_refs(v)
            for k, v in node.items()
            if not (k == "$ref" and not str(v).startswith("#"))
        }
    if isinstance(node, list):
        return [_without_remote_refs(v) for v in node]
    return node


def _without_required(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


def _schemas() -> tuple[dict, dict]:
    """(strict, merged): the chart's schema offline, and the same without ``required``."""
    strict = _without_remote_refs(json.loads(SCHEMA.read_text()))
    return strict, _without_required(strict)


def _resolve(root: dict, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        node = {**root["definitions"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}


def _branch(root: dict, node: dict, value: Any) -> dict:
    """The ``anyOf`` branch of ``node`` that has the type of ``value``."""
    node = _resolve(root, node)
    kind = _JSON_TYPES.get(type(value))
    for option in node.get("anyOf", []):
        option = _resolve(root, option)
        if option.get("type") == kind or (kind == "array" and "items" in node):
            return {**node, **option} if "items" in node else option
    return node


def _field_problems(root: dict, node: dict, value: Any, path: str) -> list[str]:
    """Fields set in ``value`` that the schema ``node`` does not declare; list items checked
    against the strict schema (with their ``required`` fields)."""
    node = _branch(root, node, value)
    problems = []
    if isinstance(value, dict):
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        for key, item in value.items():
            where = f"{path}.{key}".lstrip(".")
            if key in props:
                problems += _field_problems(root, props[key], item, where)
            elif isinstance(extra, dict):
                problems += _field_problems(root, extra, item, where)
            elif props:
                problems.append(f"{where}: not a field of the chart's {node.get('title')}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        item_schema = {"definitions": root["definitions"], **node["items"]}
        for i, item in enumerate(value):
            for error in Draft7Validator(item_schema).iter_errors(item):
                problems.append(f"{path}[{i}]: {error.message}")
            problems += _field_problems(root, node["items"], item, f"{path}[{i}]")
    return problems


def values_problems(values: dict) -> list[str]:
    """Everything wrong with ``values`` as the chart's values (empty: valid)."""
    strict, merged = _schemas()
    problems = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in Draft7Validator(merged).iter_errors(values)
    ]
    return problems + _field_problems(strict, strict, values, "")


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_values_match_the_chart_schema(values):
    assert values_problems(values) == []


def test_the_vendored_schema_is_the_recorded_copy():
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
    assert digest in (HELM / "NOTICE.md").read_text()
    Draft7Validator.check_schema(json.loads(SCHEMA.read_text()))


def _set(values: dict, path: str, value: Any) -> dict:
    changed = copy.deepcopy(values)
    *parents, last = path.split(".")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return changed


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("runLauncher.type", "K8sLauncher", "is not one of"),
        (
            "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns",
            "eight",
            "is not valid under any of the given schemas",
        ),
        ("dagster-user-deployments.deployments.0.envSecret", [], "envSecret: not a field"),
        ("dagster-user-deployments.deployments.0.port", _DELETE, "'port' is a required property"),
        ("runLauncher.config.k8sRunLauncher.envVar", [], "k8sRunLauncher.envVar: not a field"),
        ("postgresql.postgresqlHost", 5432, "is not of type 'string'"),
    ],
)
def test_a_wrong_field_is_reported(values, path, value, expected):
    problems = values_problems(_set(values, path, value))
    assert any(expected in p for p in problems), problems


def test_deployment_wiring(values):
    """What docs/DEPLOYMENT.md promises: K8sRunLauncher run pods, external PostgreSQL for the
    instance, the code location of pyproject.toml, shared storage on an object store, Pinot,
    and the billing database and credentials from a secret, never in plain values."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    env = deployment["env"]
    assert env[settings.STORAGE_URL_ENV].startswith("s3://")
    assert env["PINOT_HTTP_BROKER_URL"].startswith("http")
    secret_names = {s["name"] for s in deployment["envSecrets"]}
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert secret_names == {s["name"] for s in launcher["envSecrets"]}
    text = VALUES.read_text()
    for secret in (settings.DATABASE_URL_ENV, "AWS_SECRET_ACCESS_KEY", "PINOT_PASSWORD"):
        assert secret not in env
        assert re.search(rf"^\s*{secret}\s*:", text, re.M) is None, secret


def test_dockerfile_builds_the_user_code_image():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    assert "libpango-1.0-0" in text and "libpangoft2-1.0-0" in text
    assert 'pip install ".[k8s]"' in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    k8s_extra = project["project"]["optional-dependencies"]["k8s"]
    assert any(dep.startswith("dagster-k8s") for dep in k8s_extra)
    module = project["tool"]["dagster"]["module_name"]
    assert f'"--module-name", "{module}"' in text


def test_document_server_manifest_shares_the_code_servers_settings(values):
    """``flight-fees serve`` beside the chart reads what the run pods write: the same storage
    URL, track source and public URL, the same secret; binding 0.0.0.0 needs the token, which
    the docs put in that secret."""
    deployment, service = yaml.safe_load_all((REPO / "deploy/k8s/document-server.yaml").read_text())
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["flight-fees", "serve"]
    assert container["command"][container["command"].index("--host") + 1] == "0.0.0.0"
    env = {e["name"]: e["value"] for e in container["env"]}
    (code_server,) = values["dagster-user-deployments"]["deployments"]
    for name in (settings.STORAGE_URL_ENV, "PINOT_HTTP_BROKER_URL", "FLIGHT_FEES_PUBLIC_URL"):
        assert env[name] == code_server["env"][name], name
    secrets = {s["secretRef"]["name"] for s in container["envFrom"]}
    assert secrets == {s["name"] for s in code_server["envSecrets"]}
    assert "FLIGHT_FEES_SERVE_TOKEN" in (REPO / "docs/DEPLOYMENT.md").read_text()
    image = code_server["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flight_fees.lib.documents.issuer import (
    ISSUER_ENV,
    SAMPLE_ISSUER_PATH,
    IssuerConfigError,
    issuer_path,
    load_issuer,
    parse_issuer,
)

VALID = {
    "schema_version": 1,
    "sample": False,
    "issuer": {
        "name": "Skyways ANSP",
        "address": "2 Tower Road\n1000 Capital",
        "tax_id": "AB123456789",
    },
    "contact": {"email": "charges@skyways.example"},
    "bank": {
        "account_holder": "Skyways ANSP",
        # the ISO 13616 / ECBS documentation example IBAN (valid check digits)
        "iban": "GB82 WEST 1234 5698 7654 32",
        "bic": "westgb2l",
    },
}


def _write(tmp_path: Path, data: object, name: str = "issuer.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_shipped_sample_is_the_default_and_says_so(monkeypatch):
    monkeypatch.delenv(ISSUER_ENV, raising=False)
    assert issuer_path() == SAMPLE_ISSUER_PATH
    issuer = load_issuer()
    assert issuer.sample is True
    assert "fictional" in issuer.name.lower()
    assert issuer.iban.startswith("XX")  # no such country: never a real account
    assert issuer.iban_display.split(" ")[0] == "XX44"
    assert issuer.source == str(SAMPLE_ISSUER_PATH)


def test_env_var_selects_the_file_and_values_are_normalised(tmp_path, monkeypatch):
    path = _write(tmp_path, VALID)
    monkeypatch.setenv(ISSUER_ENV, str(path))
    issuer = load_issuer()
    assert (issuer.name, issuer.tax_id, issuer.email) == (
        "Skyways ANSP",
        "AB123456789",
        "charges@skyways.example",
    )
    assert issuer.iban == "GB82WEST12345698765432"
    assert issuer.iban_display == "GB82 WEST 1234 5698 7654 32"
    assert issuer.bic == "WESTGB2L"
    assert issuer.sample is False and issuer.phone is None and issuer.bank_name is None


def test_an_edited_file_is_read_again(tmp_path):
    path = _write(tmp_path, VALID)
    assert load_issuer(path).name == "Skyways ANSP"
    changed = {**VALID, "issuer": {**VALID["issuer"], "name": "Skyways ANSP (renamed)"}}
    path.write_text(yaml.safe_dump(changed), encoding="utf-8")
    assert load_issuer(path).name == "Skyways ANSP (renamed)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": {"name": "X", "address": "A"}}, "issuer.tax_id: required"),
        ({"bank": None}, "bank: required section missing"),
        ({"contact": {"email": "  "}}, "contact.email: required"),
        ({"contact": {"email": "not-an-address"}}, "contact.email: 'not-an-address'"),
        ({"colour": "blue"}, "unknown field(s) colour"),
        ({"sample": "yes"}, "sample: expected true or false"),
        ({"schema_version": 2}, "schema_version: unsupported 2"),
        (
            {"bank": {**VALID["bank"], "iban": "GB83WEST12345698765432"}},
            "bank.iban: 'GB83WEST12345698765432' is not a valid IBAN",
        ),
        ({"bank": {**VALID["bank"], "bic": "WEST"}}, "bank.bic: 'WEST' is not a BIC"),
        ({"bank": {**VALID["bank"], "swift": "x"}}, "bank: unknown field(s) swift"),
        ({"issuer": {**VALID["issuer"], "name": ["a"]}}, "issuer.name: expected text"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path, change, message):
    path = _write(tmp_path, {**VALID, **change})
    with pytest.raises(IssuerConfigError) as exc:
        load_issuer(path)
    assert str(exc.value).startswith(f"{path.resolve()}: ")
    assert message in str(exc.value)


def test_unreadable_or_invalid_files(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.yaml"
    monkeypatch.setenv(ISSUER_ENV, str(missing))
    with pytest.raises(
        IssuerConfigError,
        match=f"nowhere.yaml: cannot read the issuer file \\(set by {ISSUER_ENV}\\)",
    ):
        load_issuer()
    broken = tmp_path / "broken.yaml"
    broken.write_text("issuer: [unclosed", encoding="utf-8")
    with pytest.raises(IssuerConfigError, match="broken.yaml: not valid YAML"):
        load_issuer(broken)
    with pytest.raises(IssuerConfigError, match="<x>: expected a mapping"):
        parse_issuer(["a"], source="<x>")

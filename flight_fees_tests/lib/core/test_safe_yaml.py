"""The one loader of typed reference files: strict YAML, then a strict pydantic model, with
every problem named by file and dotted field."""

from __future__ import annotations

import pydantic
import pytest

from flight_fees.lib.core.safe_yaml import (
    StrictModel,
    YamlDataError,
    load_reference,
    validate_reference,
)


class Section(StrictModel):
    code: str
    rate: float = 1.0


class File(StrictModel):
    version: int
    section: Section


def test_a_valid_file_is_an_immutable_model():
    loaded = load_reference("version: 1\nsection: {code: LF, rate: 2.5}\n", File, source="f")
    assert (loaded.version, loaded.section.code, loaded.section.rate) == (1, "LF", 2.5)
    with pytest.raises(pydantic.ValidationError):
        loaded.section.code = "EG"  # type: ignore[misc]  # frozen: pydantic refuses it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nsection: {code: LF, colour: red}\n", "f: section: unknown field(s) colour"),
        ("version: 1\nextra: 2\nsection: {code: LF}\n", "f: unknown field(s) extra"),
        ("version: 1\n", "f: section: required section missing (fields: code, rate)"),
        ("version: 1\nsection: {rate: 2}\n", "f: section.code: required, missing or empty"),
        ("version: one\nsection: {code: LF}\n", "f: version: Input should be a valid integer"),
        ("version: 1\nversion: 2\nsection: {code: LF}\n", "duplicate key 'version'"),
        ("- 1\n- 2\n", "f: expected a mapping with version, section, got list"),
    ],
)
def test_every_problem_names_the_file_and_the_field(text, message):
    with pytest.raises(YamlDataError) as exc:
        load_reference(text, File, source="f")
    assert message in str(exc.value)


def test_several_problems_are_reported_together():
    with pytest.raises(YamlDataError) as exc:
        validate_reference({"version": "x", "section": {"a": 1}}, File, source="f")
    text = str(exc.value)
    assert "f: version:" in text and "f: section.code: required" in text
    assert "section: unknown field(s) a (known: code, rate)" in text

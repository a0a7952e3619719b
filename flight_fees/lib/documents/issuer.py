"""The invoice issuer: who issues the documents and where operators pay them.

The issuer block (name, address, tax id), the contact and the bank details printed on every
invoice and credit note come from a YAML file: the one named by ``FLIGHT_FEES_ISSUER``, else
the shipped, clearly fictional ``flight_fees/data/issuer_sample.yaml`` (``sample: true``, so
every document says that its issuer details are a sample).

File format (unknown fields are errors; every error names the file and the field)::

    schema_version: 1
    sample: false                # true prints a "sample issuer" notice on every document
    issuer:
      name: Example ANSP         # required
      address: |                 # required, several lines
        1 Example Street
        00000 Exampleton
      tax_id: XX000000000        # required: VAT / tax identification number
      registration: ...          # optional: company register entry
    contact:
      email: charges@ansp.example  # required
      phone: "+00 000 000"         # optional
      website: ansp.example        # optional (printed as text, never as a link)
    bank:
      account_holder: Example ANSP  # required
      iban: XX44EXMP00000000000000  # required: checked (format and ISO 13616 check digits)
      bic: EXMPXXZZ                 # required: 8 or 11 characters (ISO 9362)
      bank_name: Example Bank       # optional
    payment_note: ...            # optional: printed under the bank details
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator

from flight_fees.lib.core.safe_yaml import StrictModel, YamlDataError, load_yaml, validate_reference
from flight_fees.lib.core.settings import DATA_DIR

__all__ = [
    "ISSUER_ENV",
    "SAMPLE_ISSUER_PATH",
    "Issuer",
    "IssuerConfigError",
    "issuer_path",
    "load_issuer",
    "parse_issuer",
]

ISSUER_ENV: Final = "FLIGHT_FEES_ISSUER"
SAMPLE_ISSUER_PATH: Final[Path] = DATA_DIR / "issuer_sample.yaml"

_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class IssuerConfigError(ValueError):
    """An invalid issuer file; the message names the file and the field."""


@dataclass(frozen=True)
class Issuer:
    """The issuer of the invoices (see the module documentation for the file format)."""

    name: str
    address: str
    tax_id: str
    email: str
    account_holder: str
    iban: str
    bic: str
    registration: str | None = None
    phone: str | None = None
    website: str | None = None
    bank_name: str | None = None
    payment_note: str | None = None
    sample: bool = False
    source: str = "<issuer>"

    @property
    def iban_display(self) -> str:
        """The IBAN in groups of four characters (``XX44 EXMP 0000 ...``)."""
        return " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))


def _iban_ok(iban: str) -> bool:
    """ISO 13616: the rearranged IBAN, letters as 10..35, is 1 modulo 97."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"expected text, got {type(value).__name__} {value!r}")
    return str(value).strip()


def _required_text(value: object) -> str:
    text = _text_or_none(value)
    if text is None:
        raise ValueError("required, missing or empty")
    return text


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _version(value: object) -> int:
    if value != 1 or isinstance(value, bool):
        raise ValueError(f"unsupported {value!r} (expected 1)")
    return 1


def _iban(value: str) -> str:
    iban = re.sub(r"\s+", "", value).upper()
    if not _IBAN.fullmatch(iban) or not _iban_ok(iban):
        raise ValueError(
            f"{value!r} is not a valid IBAN (country code, check digits, 11-30 letters or "
            "digits; ISO 13616 checksum)"
        )
    return iban


def _bic(value: str) -> str:
    bic = re.sub(r"\s+", "", value).upper()
    if not _BIC.fullmatch(bic):
        raise ValueError(
            f"{value!r} is not a BIC (8 or 11 letters/digits: bank code, country code, "
            "location[, branch])"
        )
    return bic


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an address")
    return value


Text = Annotated[str, BeforeValidator(_required_text)]
OptionalText = Annotated[str | None, BeforeValidator(_text_or_none)]


class IssuerSection(StrictModel):
    name: Text
    address: Text
    tax_id: Text
    registration: OptionalText = None


class ContactSection(StrictModel):
    email: Annotated[Text, AfterValidator(_email)]
    phone: OptionalText = None
    website: OptionalText = None


class BankSection(StrictModel):
    account_holder: Text
    iban: Annotated[Text, AfterValidator(_iban)]
    bic: Annotated[Text, AfterValidator(_bic)]
    bank_name: OptionalText = None


class IssuerFile(StrictModel):
    """The issuer file (see the module documentation), validated by
    :func:`~flight_fees.lib.core.safe_yaml.validate_reference`."""

    schema_version: Annotated[int, BeforeValidator(_version)] = 1
    sample: Annotated[bool, BeforeValidator(_flag)] = False
    payment_note: OptionalText = None
    issuer: IssuerSection
    contact: ContactSection
    bank: BankSection


def parse_issuer(data: object, *, source: str = "<issuer>") -> Issuer:
    """Validate the parsed YAML of an issuer file (``source`` names it in the errors)."""
    try:
        file = validate_reference(data, IssuerFile, source=source)
    except YamlDataError as exc:
        raise IssuerConfigError(str(exc)) from None
    return Issuer(
        name=file.issuer.name,
        address=file.issuer.address,
        tax_id=file.issuer.tax_id,
        registration=file.issuer.registration,
        email=file.contact.email,
        phone=file.contact.phone,
        website=file.contact.website,
        account_holder=file.bank.account_holder,
        iban=file.bank.iban,
        bic=file.bank.bic,
        bank_name=file.bank.bank_name,
        payment_note=file.payment_note,
        sample=file.sample,
        source=source,
    )


def issuer_path() -> Path:
    """The issuer file in use: ``FLIGHT_FEES_ISSUER`` when set, else the shipped sample."""
    configured = os.environ.get(ISSUER_ENV, "").strip()
    return Path(configured).expanduser() if configured else SAMPLE_ISSUER_PATH


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> Issuer:
    del mtime_ns, size  # cache keys only: an edited file is read again
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise IssuerConfigError(f"{path}: cannot read the issuer file: {exc.strerror}") from None
    try:  # strict: a duplicated key is an error, not silently the last value
        data = load_yaml(text, source=path)
    except YamlDataError as exc:
        raise IssuerConfigError(
            str(exc).replace(": invalid YAML:", ": not valid YAML:", 1)
        ) from None
    return parse_issuer(data, source=path)


def load_issuer(path: str | Path | None = None) -> Issuer:
    """Read and validate the issuer file ``path`` (default :func:`issuer_path`).

    Raises :class:`IssuerConfigError` naming the file (and the field) on any problem,
    including a ``FLIGHT_FEES_ISSUER`` that points nowhere.
    """
    file = Path(path) if path is not None else issuer_path()
    try:
        stat = file.stat()
    except OSError as exc:
        hint = f" (set by {ISSUER_ENV})" if path is None and file != SAMPLE_ISSUER_PATH else ""
        raise IssuerConfigError(
            f"{file}: cannot read the issuer file{hint}: {exc.strerror}"
        ) from None
    return _load(str(file.resolve()), stat.st_mtime_ns, stat.st_size)

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
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import yaml

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

_SECTIONS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # section: (required fields, optional fields)
    "issuer": (("name", "address", "tax_id"), ("registration",)),
    "contact": (("email",), ("phone", "website")),
    "bank": (("account_holder", "iban", "bic"), ("bank_name",)),
}
_TOP_LEVEL: Final = frozenset({"schema_version", "sample", "payment_note", *_SECTIONS})
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


def _text(value: object, source: str, field: str, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise IssuerConfigError(f"{source}: {field}: required, missing or empty")
        return None
    if not isinstance(value, str | int):
        raise IssuerConfigError(
            f"{source}: {field}: expected text, got {type(value).__name__} {value!r}"
        )
    return str(value).strip()


def parse_issuer(data: object, *, source: str = "<issuer>") -> Issuer:
    """Validate the parsed YAML of an issuer file (``source`` names it in the errors)."""
    if not isinstance(data, Mapping):
        raise IssuerConfigError(
            f"{source}: expected a mapping with sections issuer, contact and bank, "
            f"got {type(data).__name__}"
        )
    unknown = sorted(str(k) for k in data if k not in _TOP_LEVEL)
    if unknown:
        raise IssuerConfigError(
            f"{source}: unknown field(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_TOP_LEVEL))})"
        )
    version = data.get("schema_version", 1)
    if version != 1:
        raise IssuerConfigError(f"{source}: schema_version: unsupported {version!r} (expected 1)")
    sample = data.get("sample", False)
    if not isinstance(sample, bool):
        raise IssuerConfigError(f"{source}: sample: expected true or false, got {sample!r}")

    values: dict[str, str | None] = {}
    for section, (required, optional) in _SECTIONS.items():
        block = data.get(section)
        if not isinstance(block, Mapping):
            raise IssuerConfigError(
                f"{source}: {section}: required section missing (fields: "
                f"{', '.join(required + optional)})"
            )
        extra = sorted(str(k) for k in block if k not in required + optional)
        if extra:
            raise IssuerConfigError(
                f"{source}: {section}: unknown field(s) {', '.join(extra)} "
                f"(known: {', '.join(required + optional)})"
            )
        for name in required + optional:
            values[name] = _text(
                block.get(name), source, f"{section}.{name}", required=name in required
            )

    iban = re.sub(r"\s+", "", str(values["iban"])).upper()
    if not _IBAN.fullmatch(iban) or not _iban_ok(iban):
        raise IssuerConfigError(
            f"{source}: bank.iban: {values['iban']!r} is not a valid IBAN "
            "(country code, check digits, 11-30 letters or digits; ISO 13616 checksum)"
        )
    bic = re.sub(r"\s+", "", str(values["bic"])).upper()
    if not _BIC.fullmatch(bic):
        raise IssuerConfigError(
            f"{source}: bank.bic: {values['bic']!r} is not a BIC (8 or 11 letters/digits: "
            "bank code, country code, location[, branch])"
        )
    if not _EMAIL.fullmatch(str(values["email"])):
        raise IssuerConfigError(f"{source}: contact.email: {values['email']!r} is not an address")
    return Issuer(
        name=str(values["name"]),
        address=str(values["address"]),
        tax_id=str(values["tax_id"]),
        email=str(values["email"]),
        account_holder=str(values["account_holder"]),
        iban=iban,
        bic=bic,
        registration=values["registration"],
        phone=values["phone"],
        website=values["website"],
        bank_name=values["bank_name"],
        payment_note=_text(data.get("payment_note"), source, "payment_note", required=False),
        sample=sample,
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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IssuerConfigError(f"{path}: not valid YAML: {exc}") from None
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

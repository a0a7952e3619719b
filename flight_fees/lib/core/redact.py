"""Keep credentials out of everything printed, logged, raised or stored as metadata.

:func:`mask_url` hides the password of every ``scheme://user:password@host`` in a text
(``http://admin:***@host``); :func:`redact` also replaces given secret values (tokens,
passwords from the environment, see :func:`environment_secrets`) by ``***``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "SECRET_ENV_VARS", "environment_secrets", "mask_url", "redact"]

MASK = "***"
#: environment variables whose whole value is a secret
SECRET_ENV_VARS = ("PINOT_PASSWORD", "PINOT_BEARER_TOKEN", "FLIGHT_FEES_INTAKE_SECRET")
#: environment variables holding URLs that may carry a password
URL_ENV_VARS = ("PINOT_HTTP_BROKER_URL", "FLIGHT_FEES_DATABASE_URL")
#: ``scheme://user:password@`` (the password runs to the last ``@`` of the authority)
_USERINFO = re.compile(r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):[^\s/]*@")
#: shorter values are not replaced in free text (too many false hits)
_MIN_SECRET_LENGTH = 4


def mask_url(text: str) -> str:
    """``text`` with the password of every URL replaced by ``***`` (the user name stays)."""
    return _USERINFO.sub(lambda m: f"{m['prefix']}:{MASK}@", text)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``str(text)`` with URL passwords masked and every value of ``secrets`` replaced."""
    masked = mask_url(str(text))
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}, key=len)[::-1]:
        masked = masked.replace(secret, MASK)
    return masked


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values configured in the environment: :data:`SECRET_ENV_VARS` and the
    passwords (raw and URL-decoded) of the URLs in :data:`URL_ENV_VARS`."""
    env = os.environ if environ is None else environ
    values = [env.get(name, "").strip() for name in SECRET_ENV_VARS]
    for name in URL_ENV_VARS:
        url = env.get(name, "").strip()
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            password = None
        if password:
            values += [password, unquote(password)]
    return [v for v in values if v]

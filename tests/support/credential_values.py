"""Credentials of each form, made fresh for each test (none is written in the repository)."""

from __future__ import annotations

import base64
import secrets
import string

_UPPER = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def _pick(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def aws_key() -> str:
    return "AKIA" + _pick(_UPPER, 16)


def github_token() -> str:
    return "gh" + "p_" + _pick(_ALNUM, 36)


def vault_token() -> str:
    return "hv" + "s." + _pick(_ALNUM, 24)


def pgpass_line() -> tuple[str, str]:
    password = "Pg" + secrets.token_hex(8)
    return f"db.internal:5432:prod:alice:{password}", password


def private_key() -> str:
    body = base64.b64encode(secrets.token_bytes(96)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    kind = "RSA " + "PRIVATE KEY"
    return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n"


def sendgrid_key() -> str:
    return "S" + "G." + _pick(_ALNUM, 22) + "." + _pick(_ALNUM, 43)

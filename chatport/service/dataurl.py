"""Data URLs (RFC 2397) as clients send images and files inline: ``data:TYPE;base64,DATA``."""

from __future__ import annotations

import base64
import binascii
import re

DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.ASCII)


class PayloadError(ValueError):
    """Why a base64 payload gave no usable bytes: ``too_large``, ``invalid`` or ``empty``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def decode_payload(payload: str, max_bytes: int) -> bytes:
    """Base64 -> bytes; the decoded size is judged from the encoded length, before decoding."""
    if len(payload) * 3 // 4 > max_bytes:
        raise PayloadError("too_large")
    try:
        data = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("invalid") from None
    if not data:
        raise PayloadError("empty")
    return data

"""The signature scheme of every delivery (Stripe's and GitHub's): HMAC-SHA256 over `timestamp.body`.

docs/API.md "Webhooks" documents the headers and a receiver's verify snippet; tests/test_webhooks.py runs
that snippet against what this module produces.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

ID_HEADER = "X-QMS-Webhook-Id"
TIMESTAMP_HEADER = "X-QMS-Webhook-Timestamp"
SIGNATURE_HEADER = "X-QMS-Webhook-Signature"
SCHEME = "v1"


def body(webhook_id: str, event_type: str, created_at: datetime, data: dict) -> bytes:
    """The JSON body: the same bytes on every retry (only the timestamp header and signature change)."""
    return json.dumps({"id": webhook_id, "type": event_type, "created_at": created_at.isoformat(), "data": data},
                      separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """`v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def headers(secret: str, webhook_id: str, timestamp: int, payload: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "qms-webhooks/1",
        ID_HEADER: webhook_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, payload),
    }

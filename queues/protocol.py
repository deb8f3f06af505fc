"""The vocabulary shared by the engine, the socket, the API and the page: a fan's states, the socket's
message kinds and close codes. Every module names them from here (the page receives them as JSON)."""

from __future__ import annotations

from enum import IntEnum, StrEnum

# The query parameter carrying an admitted fan's token back to a protected site (the waiting room's `?return=`);
# the gate (`/gate/auth`) exchanges it for its cookie.
RETURN_TOKEN_PARAMETER = "qms_token"


class FanState(StrEnum):
    """Where a fan stands. The store knows WAITING, PENDING and ADMITTED; the service adds PREQUEUE
    (waiting before the opening, order not drawn yet)."""

    PREQUEUE = "prequeue"
    WAITING = "waiting"
    PENDING = "pending"  # popped by a tick, ledger row not yet confirmed (shown to fans as WAITING, first)
    ADMITTED = "admitted"


class MessageType(StrEnum):
    """`type` of the frames the server sends on the waiting-room socket (docs/API.md)."""

    QUEUED = "queued"
    PROGRESS = "progress"
    ADMITTED = "admitted"
    SUPERSEDED = "superseded"
    PAUSED = "paused"
    RESUMED = "resumed"
    RESET = "reset"
    ANNOUNCEMENT = "announcement"  # the operator's message to the waiting crowd, set or cleared
    LEFT = "left"
    PONG = "pong"
    ERROR = "error"


class CloseCode(IntEnum):
    """WebSocket close codes of the waiting-room socket (docs/API.md)."""

    ADMITTED = 4000
    LEFT = 4001
    SUPERSEDED = 4002
    RESET = 4003
    NOT_AUTHENTICATED = 4401
    ORIGIN_REFUSED = 4403
    UNKNOWN_EVENT = 4404
    QUEUE_CLOSED = 4409  # draining, or the pre-queue is not open yet
    POW_REQUIRED = 4428
    ENTRY_REFUSED = 4430  # the event's entry policy: closed (reject), or an enqueue token or access code refused


def page_protocol() -> dict:
    """The constants the waiting-room script needs, for `json_script` in its template."""
    return {
        "states": {state.name: state.value for state in FanState},
        "messages": {kind.name: kind.value for kind in MessageType},
        "close": {code.name: int(code) for code in CloseCode},
    }

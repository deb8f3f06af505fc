"""Daphne's WebSocket protocol (autobahn) does no debug formatting per connection unless debug is on."""

from __future__ import annotations

import pprint

import txaio
from autobahn.twisted.websocket import WebSocketServerFactory

from queues.management.commands.serve import defer_autobahn_debug_formatting


def connection_made(log_level: str, monkeypatch) -> tuple[list, list[str]]:
    """One autobahn server connection's start: what it pretty-printed, and the debug lines it logged."""
    defer_autobahn_debug_formatting()
    printed: list = []
    real = pprint.PrettyPrinter.pformat
    monkeypatch.setattr(pprint.PrettyPrinter, "pformat", lambda self, obj: printed.append(obj) or real(self, obj))
    lines: list[str] = []
    protocol = WebSocketServerFactory().buildProtocol(None)
    protocol.log = txaio.make_logger(level=log_level, observer=lambda event: lines.append(
        event["log_format"].format(**event)))
    protocol._connectionMade()
    return printed, lines


def test_a_connection_pretty_prints_nothing_when_debug_is_off(monkeypatch):
    printed, lines = connection_made("info", monkeypatch)
    assert printed == [] and lines == []


def test_the_debug_line_still_shows_the_configuration_when_debug_is_on(monkeypatch):
    printed, lines = connection_made("debug", monkeypatch)
    assert any("'openHandshakeTimeout'" in line for line in lines)
    assert printed

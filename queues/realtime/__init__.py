"""The real-time layer: the waiting-room socket and everything that reaches it.

`consumer` (the socket, an adapter over `queues.admission`), `place` (what a broadcast means for one fan),
`messages` (every frame's shape), `publish` (groups, and publishing what the engine decided), `receivers`
(the engine's signals → publish), `fanout` (one channel per process), `auth` and `routing` (the socket's
front door) and `loop` (the embedded admission tick). Imports go one way: this package imports the engine,
never the reverse.
"""

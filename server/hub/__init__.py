"""The knowledge hub's protocol logic, free of I/O: channel names and patterns,
WebSocket framing, per-connection outboxes, the subscription index, rate limits
and recovery rules. `server/hub/service.py` puts them to work."""

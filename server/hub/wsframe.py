"""Server-to-client WebSocket frames built by hand, so one encoding of a push can
be queued for every subscriber and several can leave in one transport write."""

import struct

import orjson

_FIN_TEXT = 0x81
"""FIN bit set, opcode 0x1 (text): RFC 6455 §5.2. Server frames are never masked (§5.1)."""


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying `payload` (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


def push_json(channel: str, offset: int, epoch: str, data_json: bytes) -> bytes:
    """`encode(PushFrame(...))` without re-encoding `data_json`, the message's
    own encoding, made once per message (tests/test_hub_protocol.py checks the
    two agree byte for byte)."""
    return b"".join(
        (
            b'{"type":"push","channel":',
            orjson.dumps(channel),
            b',"offset":',
            str(offset).encode(),
            b',"epoch":',
            orjson.dumps(epoch),
            b',"data":',
            data_json,
            b"}",
        )
    )

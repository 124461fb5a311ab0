"""The hub's pure protocol pieces: channel names and patterns, hand-built WebSocket
frames, the bounded outbox, the publish token bucket, recovery rules, popularity
and the subscription registry."""

import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import (
    CHANNEL_NAME_RE,
    CHANNEL_PATTERN_RE,
    ChannelCreate,
    KnowledgeMessage,
    KnowledgeType,
    Priority,
    PushFrame,
    Subscription,
    encode,
)
from server.hub.names import DEFAULT_CHANNELS, channel_for, is_pattern, matches
from server.hub.outbox import CONTROL, Outbox, Verdict
from server.hub.popularity import popularity
from server.hub.ratelimit import TokenBucket
from server.hub.recovery import after_replay, recoverable
from server.hub.subscriptions import Delivery, Peer, Registry, Sub, route
from server.hub.wsframe import push_json, text_frame

# -- names ------------------------------------------------------------------------

# A small alphabet so that random patterns and names often share segments.
segment = st.sampled_from(["a", "b", "ab", "code", "x_1", "re-view"])
names = st.lists(segment, min_size=1, max_size=5).map(".".join)
pattern_segment = st.one_of(segment, st.just("*"))


@st.composite
def patterns(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return ">"
    parts = draw(st.lists(pattern_segment, min_size=1, max_size=5))
    if draw(st.booleans()):
        parts.append(">")
    return ".".join(parts)


def reference_matches(pattern: str, name: str) -> bool:
    """NATS rules as a regular expression: `*` is one segment, a final `>` one or more."""
    if pattern == ">":
        return True
    head, tail = (pattern[:-2], r"(\.[^.]+)+") if pattern.endswith(".>") else (pattern, "")
    body = r"\.".join("[^.]+" if s == "*" else re.escape(s) for s in head.split("."))
    return re.fullmatch(body + tail, name) is not None


@given(names)
def test_a_name_matches_itself_and_the_full_wildcard(name: str) -> None:
    assert matches(name, name)
    assert matches(">", name)


@given(names)
def test_a_star_after_a_matches_exactly_two_segment_names_starting_with_a(name: str) -> None:
    parts = name.split(".")
    assert matches("a.*", name) == (len(parts) == 2 and parts[0] == "a")


def test_star_matches_one_segment_and_never_crosses_a_dot() -> None:
    assert matches("*", "code")
    assert not matches("*", "code.python")
    assert matches("code.*", "code.python")
    assert not matches("code.*", "code.python.review")
    assert not matches("code.*", "code")
    assert matches("*.review", "code.review")
    assert not matches("*.review", "team.code.review")
    assert matches("*.*", "a.b")
    assert not matches("co*", "code")


def test_final_gt_matches_one_or_more_segments_but_not_none() -> None:
    assert matches("code.>", "code.python")
    assert matches("code.>", "code.python.review.deep")
    assert not matches("code.>", "code")
    assert not matches("code.>", "codex.python")
    assert matches("*.>", "a.b.c")
    assert not matches("*.>", "a")


@given(patterns(), names)
def test_matches_agrees_with_a_regex_translation(pattern: str, name: str) -> None:
    assert matches(pattern, name) == reference_matches(pattern, name)


@given(names, names)
def test_a_plain_name_as_pattern_matches_only_itself(pattern: str, name: str) -> None:
    assert not is_pattern(pattern)
    assert matches(pattern, name) == (pattern == name)


def test_is_pattern_and_the_default_channels() -> None:
    assert is_pattern("code.*")
    assert is_pattern("*.review")
    assert is_pattern("code.>")
    assert is_pattern(">")
    assert not is_pattern("code.python")
    assert not any(is_pattern(c) for c in DEFAULT_CHANNELS)


def test_channel_for_picks_a_channel_by_knowledge_type() -> None:
    assert channel_for(KnowledgeType.SOLUTION) == "solutions"
    assert channel_for(KnowledgeType.WARNING) == "warnings"
    assert channel_for(KnowledgeType.OPTIMIZATION) == "optimizations"
    for other in (
        KnowledgeType.DISCOVERY,
        KnowledgeType.BEST_PRACTICE,
        KnowledgeType.PATTERN,
        KnowledgeType.ERROR_FIX,
    ):
        assert channel_for(other) == "general"
    assert all(channel_for(kind) in DEFAULT_CHANNELS for kind in KnowledgeType)


# -- channel name and pattern syntax --------------------------------------------------


@pytest.mark.parametrize(
    "name", ["code", "code.python", "team-a.code.review", "a_b.0.x-y", "a.b.c.d.e.f.g.h", "a" * 128]
)
def test_valid_channel_names(name: str) -> None:
    assert re.fullmatch(CHANNEL_NAME_RE, name)
    assert ChannelCreate(name=name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Code",
        "code.Python",
        "code..python",
        ".code",
        "code.",
        "a.b.c.d.e.f.g.h.i",
        "a" * 129,
        "code python",
        " code",
        "code\n",
        "code.*",
        "code.>",
        "códe",
    ],
)
def test_invalid_channel_names(name: str) -> None:
    with pytest.raises(ValidationError):
        ChannelCreate(name=name)


def test_a_129_character_name_fails_on_length_alone() -> None:
    name = "a" * 129
    assert re.fullmatch(CHANNEL_NAME_RE, name)
    with pytest.raises(ValidationError):
        ChannelCreate(name=name)


@pytest.mark.parametrize(
    "pattern", ["code", "code.*", "*.review", "code.>", ">", "*", "*.*.>", "team-a.*.review"]
)
def test_valid_channel_patterns(pattern: str) -> None:
    assert re.fullmatch(CHANNEL_PATTERN_RE, pattern)
    assert Subscription(channel=pattern).channel == pattern


@pytest.mark.parametrize(
    "pattern",
    ["code.>.x", "co*de", "code*", "**", ">.code", "code.>>", "code..*", "Code.*", "", "code.* "],
)
def test_invalid_channel_patterns(pattern: str) -> None:
    assert not re.fullmatch(CHANNEL_PATTERN_RE, pattern)
    with pytest.raises(ValidationError):
        Subscription(channel=pattern)


@given(st.from_regex(CHANNEL_NAME_RE, fullmatch=True))
def test_every_channel_name_is_a_pattern_that_matches_it(name: str) -> None:
    assert re.fullmatch(CHANNEL_PATTERN_RE, name)
    assert not is_pattern(name)
    assert matches(name, name)
    assert matches(">", name)


# -- WebSocket frames -----------------------------------------------------------------


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


def parse_frame(data: bytes) -> tuple[Frame, bytes]:
    """One frame off the front of `data` (RFC 6455 §5.2), and what follows it.
    Refuses lengths not written in the minimal number of bytes, as §5.2 requires."""
    b0, b1 = data[0], data[1]
    size, at = b1 & 0x7F, 2
    if size == 126:
        (size,) = struct.unpack_from("!H", data, at)
        at += 2
        assert size >= 126, "16-bit length used for a length under 126"
    elif size == 127:
        (size,) = struct.unpack_from("!Q", data, at)
        at += 8
        assert size >= 1 << 16, "64-bit length used for a length under 65536"
        assert size < 1 << 63, "64-bit length with its most significant bit set"
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        key, at = data[at : at + 4], at + 4
    payload = data[at : at + size]
    assert len(payload) == size, "frame shorter than its header says"
    if masked:
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    frame = Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, masked, payload)
    return frame, data[at + size :]


def parse_frames(data: bytes) -> list[Frame]:
    frames = []
    while data:
        frame, data = parse_frame(data)
        frames.append(frame)
    return frames


def header_length(size: int) -> int:
    return 2 if size < 126 else 4 if size < 1 << 16 else 10


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_header_at_the_length_boundaries(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    data = text_frame(payload)
    assert data[0] == 0x81  # FIN, no RSV bits, opcode 0x1 (text)
    assert data[1] & 0x80 == 0  # server frames are not masked
    assert len(data) == header_length(size) + size
    frame, rest = parse_frame(data)
    assert frame == Frame(fin=True, rsv=0, opcode=0x1, masked=False, payload=payload)
    assert rest == b""


def test_text_frame_length_encodings() -> None:
    assert text_frame(b"")[:2] == b"\x81\x00"
    assert text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65535)[:4] == b"\x81\x7e\xff\xff"
    assert text_frame(b"x" * 65536)[:10] == b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"


@given(st.integers(0, 70_000), st.binary(max_size=64))
def test_text_frame_round_trips_any_payload_size(size: int, prefix: bytes) -> None:
    payload = (prefix + b"p" * size)[: max(size, len(prefix))]
    frame, rest = parse_frame(text_frame(payload))
    assert (frame.fin, frame.rsv, frame.opcode, frame.masked) == (True, 0, 0x1, False)
    assert frame.payload == payload
    assert rest == b""


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_concatenated_frames_split_back_apart(payloads: list[bytes]) -> None:
    data = b"".join(text_frame(p) for p in payloads)
    assert [f.payload for f in parse_frames(data)] == payloads


# -- push_json -----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)

messages = st.builds(
    KnowledgeMessage,
    id=st.integers(0, 2**63 - 1),
    source_agent=st.text(max_size=40),
    knowledge_type=st.sampled_from(KnowledgeType),
    title=st.text(max_size=80),
    content=st.text(max_size=200),
    context=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    priority=st.sampled_from(Priority),
    tags=st.lists(st.text(max_size=12), max_size=4),
    created_at=st.datetimes(timezones=st.sampled_from([UTC])) | st.datetimes(),
)


@given(
    st.text(max_size=64) | st.from_regex(CHANNEL_NAME_RE, fullmatch=True),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=32),
    messages,
)
def test_push_json_equals_the_encoded_push_frame(
    channel: str, offset: int, epoch: str, message: KnowledgeMessage
) -> None:
    expected = encode(PushFrame(channel=channel, offset=offset, epoch=epoch, data=message))
    assert push_json(channel, offset, epoch, encode(message)) == expected


def test_push_json_with_unicode_and_escapes() -> None:
    message = KnowledgeMessage(
        id=7,
        source_agent="agent-ü",
        knowledge_type=KnowledgeType.SOLUTION,
        title='Fix "quotes" \\ and \n newlines — 日本語 🚀',
        content="\x00\x1f\u2028",
        context={"k": [1, 2.5, None, {"nested": "ß"}], "": True},
        priority=Priority.CRITICAL,
        tags=["tag-1", "τ"],
        created_at=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )
    data = push_json("code.python", 42, "ep\u00e9och", encode(message))
    assert data == encode(
        PushFrame(channel="code.python", offset=42, epoch="ep\u00e9och", data=message)
    )
    decoded = orjson.loads(data)
    assert decoded["type"] == "push"
    assert decoded["offset"] == 42
    assert decoded["data"]["title"] == message.title


# -- outbox ----------------------------------------------------------------------------


def numbered(i: int, pad: int = 0) -> bytes:
    """A real push-like frame that says which push it was."""
    return text_frame(orjson.dumps({"i": i, "pad": "x" * pad}))


def lagged_count(frame: Frame) -> int | None:
    body = orjson.loads(frame.payload)
    if body.get("type") == "lagged":
        assert set(body) == {"type", "dropped"}
        return int(body["dropped"])
    return None


def read_take(data: bytes) -> tuple[int, list[int]]:
    """(dropped reported by a leading `lagged` frame or 0, the push numbers in order)."""
    frames = parse_frames(data)
    for f in frames:
        assert (f.fin, f.opcode, f.masked) == (True, 0x1, False)
    dropped = 0
    if frames and (count := lagged_count(frames[0])) is not None:
        dropped = count
        assert count > 0
        frames = frames[1:]
    assert all(lagged_count(f) is None for f in frames), "lagged frame not first"
    return dropped, [orjson.loads(f.payload)["i"] for f in frames]


def test_outbox_keeps_order_and_empties_on_take() -> None:
    box = Outbox(max_bytes=10_000, max_drops=3)
    frames = [numbered(i) for i in range(5)]
    for i, frame in enumerate(frames):
        assert box.push(frame, i % 4) is Verdict.QUEUED
    assert len(box) == box.queued_bytes == sum(map(len, frames))
    assert box.take() == b"".join(frames)
    assert len(box) == 0
    assert box.take() == b""
    assert box.dropped == 0


def reference_outbox(pushes: list[tuple[int, int]], max_bytes: int) -> list[bytes]:
    """The eviction rule written plainly: lowest rank first, oldest first."""
    queued: list[tuple[int, bytes]] = []
    for n, (rank, pad) in enumerate(pushes):
        frame = numbered(n) + b"." * pad
        total = sum(len(f) for _, f in queued)
        if rank < CONTROL and total + len(frame) > max_bytes:
            evictable = sum(len(f) for r, f in queued if r < rank)
            if total - evictable + len(frame) > max_bytes:
                continue
            while sum(len(f) for _, f in queued) + len(frame) > max_bytes:
                lowest = min(r for r, _ in queued)
                queued.remove(next(item for item in queued if item[0] == lowest))
        queued.append((rank, frame))
    return [f for _, f in queued]


@given(
    st.lists(st.tuples(st.integers(0, CONTROL), st.integers(0, 40)), max_size=60),
    st.integers(100, 600),
)
def test_outbox_matches_the_reference_eviction_rule(
    pushes: list[tuple[int, int]], max_bytes: int
) -> None:
    box = Outbox(max_bytes=max_bytes, max_drops=10_000)
    for n, (rank, pad) in enumerate(pushes):
        box.push(numbered(n) + b"." * pad, rank)
    kept = reference_outbox(pushes, max_bytes)
    assert box.queued_bytes == sum(map(len, kept))
    taken = box.take()
    assert taken.endswith(b"".join(kept))
    assert len(box) == 0 and box.take() == b""


def test_outbox_evicts_lowest_rank_first_and_oldest_first_within_a_rank() -> None:
    frames = [numbered(i) for i in range(10)]
    size = len(frames[0])
    assert all(len(f) == size for f in frames)
    box = Outbox(max_bytes=3 * size, max_drops=100)
    box.push(frames[0], Priority.MEDIUM.rank)
    box.push(frames[1], Priority.LOW.rank)
    box.push(frames[2], Priority.LOW.rank)
    assert box.push(frames[3], Priority.HIGH.rank) is Verdict.QUEUED  # evicts 1
    assert read_take(box.take()) == (1, [0, 2, 3])

    box.push(frames[4], Priority.MEDIUM.rank)
    box.push(frames[5], Priority.LOW.rank)
    box.push(frames[6], Priority.LOW.rank)
    assert box.push(frames[7], Priority.CRITICAL.rank) is Verdict.QUEUED  # evicts 5
    assert box.push(frames[8], Priority.CRITICAL.rank) is Verdict.QUEUED  # evicts 6
    assert box.push(frames[9], Priority.HIGH.rank) is Verdict.QUEUED  # evicts 4
    assert read_take(box.take()) == (3, [7, 8, 9])
    assert box.dropped == 4


def test_a_push_that_outranks_nothing_queued_is_itself_dropped() -> None:
    frames = [numbered(i) for i in range(4)]
    size = len(frames[0])
    box = Outbox(max_bytes=2 * size, max_drops=100)
    box.push(frames[0], Priority.HIGH.rank)
    box.push(frames[1], Priority.HIGH.rank)
    assert box.push(frames[2], Priority.HIGH.rank) is Verdict.DROPPED
    assert box.push(frames[3], Priority.LOW.rank) is Verdict.DROPPED
    assert len(box) == 2 * size
    assert read_take(box.take()) == (2, [0, 1])


def test_a_push_dropped_anyway_does_not_evict_lower_pushes_for_nothing() -> None:
    """Eviction is there to make room; when evicting everything the push outranks
    still leaves no room, the push is dropped and the evicted frames were lost for
    nothing (and count towards OVERFLOW). Only the push itself should go."""
    low, high = numbered(0), numbered(1, pad=40)
    box = Outbox(max_bytes=len(low) + len(high) + 10, max_drops=100)
    box.push(high, Priority.CRITICAL.rank)
    box.push(low, Priority.LOW.rank)
    too_big = numbered(2, pad=60)  # no room for it even once `low` is gone
    assert len(high) + len(too_big) > box.max_bytes
    assert box.push(too_big, Priority.HIGH.rank) is Verdict.DROPPED
    assert read_take(box.take()) == (1, [1, 0])


def test_a_frame_bigger_than_the_outbox_does_not_empty_it() -> None:
    queued = [numbered(i) for i in range(3)]
    box = Outbox(max_bytes=sum(map(len, queued)), max_drops=100)
    for frame in queued:
        box.push(frame, Priority.LOW.rank)
    huge = numbered(3, pad=box.max_bytes)
    assert box.push(huge, Priority.CRITICAL.rank) is Verdict.DROPPED
    assert read_take(box.take()) == (1, [0, 1, 2])


def test_outbox_says_overflow_once_drops_since_the_last_take_exceed_max_drops() -> None:
    frame = numbered(0)
    box = Outbox(max_bytes=len(frame), max_drops=2)
    assert box.push(frame, Priority.CRITICAL.rank) is Verdict.QUEUED
    assert box.push(frame, Priority.LOW.rank) is Verdict.DROPPED
    assert box.push(frame, Priority.LOW.rank) is Verdict.DROPPED
    assert box.push(frame, Priority.LOW.rank) is Verdict.OVERFLOW
    assert box.push(frame, Priority.LOW.rank) is Verdict.OVERFLOW
    dropped, kept = read_take(box.take())
    assert (dropped, kept) == (4, [0])
    # the count starts again after a take
    assert box.push(frame, Priority.MEDIUM.rank) is Verdict.QUEUED
    assert box.push(frame, Priority.LOW.rank) is Verdict.DROPPED
    assert read_take(box.take()) == (1, [0])
    assert box.dropped == 5


def test_an_eviction_counts_towards_overflow_even_when_the_push_queues() -> None:
    frames = [numbered(i) for i in range(3)]
    box = Outbox(max_bytes=len(frames[0]), max_drops=0)
    assert box.push(frames[0], Priority.LOW.rank) is Verdict.QUEUED
    assert box.push(frames[1], Priority.HIGH.rank) is Verdict.OVERFLOW  # evicted 0
    assert read_take(box.take()) == (1, [1])


def test_control_frames_are_never_dropped_even_above_max_bytes() -> None:
    frames = [numbered(i, pad=50) for i in range(6)]
    box = Outbox(max_bytes=len(frames[0]), max_drops=100)
    assert box.push(frames[0], CONTROL) is Verdict.QUEUED
    assert box.push(frames[1], CONTROL) is Verdict.QUEUED
    assert len(box) == 2 * len(frames[0]) > box.max_bytes
    assert box.push(frames[2], Priority.CRITICAL.rank) is Verdict.DROPPED
    assert box.push(frames[3], CONTROL) is Verdict.QUEUED
    assert read_take(box.take()) == (1, [0, 1, 3])


def test_control_frame_evicts_nothing() -> None:
    frames = [numbered(i) for i in range(3)]
    box = Outbox(max_bytes=2 * len(frames[0]), max_drops=100)
    box.push(frames[0], Priority.LOW.rank)
    box.push(frames[1], Priority.LOW.rank)
    assert box.push(frames[2], CONTROL) is Verdict.QUEUED
    assert read_take(box.take()) == (0, [0, 1, 2])


@given(
    max_bytes=st.integers(1, 400),
    max_drops=st.integers(0, 6),
    pushes=st.lists(st.tuples(st.integers(0, 60), st.integers(0, CONTROL)), max_size=40),
)
def test_outbox_invariants_over_random_pushes(
    max_bytes: int, max_drops: int, pushes: list[tuple[int, int]]
) -> None:
    box = Outbox(max_bytes=max_bytes, max_drops=max_drops)
    frames = [numbered(i, pad) for i, (pad, _) in enumerate(pushes)]
    ranks = [rank for _, rank in pushes]
    refused: set[int] = set()
    for i, frame in enumerate(frames):
        before = box.dropped
        highest_before = max((r for r in ranks[:i] if r < CONTROL), default=-1)
        verdict = box.push(frame, ranks[i])
        assert box.dropped >= before
        # OVERFLOW exactly when drops (none taken yet) exceed max_drops
        assert (verdict is Verdict.OVERFLOW) == (box.dropped > max_drops)
        if verdict is Verdict.DROPPED:
            assert box.dropped > before
        if not (box._frames and box._frames[-1] is frame):
            refused.add(i)
            assert box.dropped == before + 1  # a refused push evicts nothing
        if ranks[i] == CONTROL:
            assert verdict is not Verdict.DROPPED
        if (
            ranks[i] < CONTROL
            and ranks[i] > highest_before
            and CONTROL not in ranks[:i]
            and len(frame) <= max_bytes
        ):
            # it outranks everything queued, so there is room to make for it
            assert verdict is not Verdict.DROPPED
        if CONTROL not in ranks[: i + 1]:
            assert len(box) <= max_bytes

    queued = len(box)
    dropped, kept = read_take(box.take())
    assert len(box) == 0
    assert box.take() == b""

    assert kept == sorted(kept)  # FIFO for what survives
    assert queued == sum(len(frames[i]) for i in kept)
    assert sum(len(frames[i]) for i in kept if ranks[i] < CONTROL) <= max_bytes
    assert dropped == box.dropped == len(frames) - len(kept)
    assert all(i in kept for i, rank in enumerate(ranks) if rank == CONTROL)
    assert not refused & set(kept)
    if sum(map(len, frames)) <= max_bytes:
        assert dropped == 0
    # lowest rank goes first: whatever was queued when a frame was evicted ranked at
    # least as high (a refused push evicts nothing, so it proves nothing here)
    evicted = [i for i in range(len(frames)) if i not in kept and i not in refused]
    for d in evicted:
        assert all(ranks[s] >= ranks[d] for s in kept if s < d)


# -- token bucket -------------------------------------------------------------------


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_its_burst_at_once_then_asks_for_a_wait() -> None:
    clock = FakeClock(100.0)
    bucket = TokenBucket(rate=2.0, burst=5, clock=clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    wait = bucket.take()
    assert wait == 0.5  # one token at 2 per second
    assert bucket.take() == 0.5  # a denial takes nothing


@given(
    rate=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0, 16.0]),
    burst=st.integers(1, 20),
    k=st.integers(1, 20),
)
def test_after_k_over_rate_seconds_k_more_are_allowed(rate: float, burst: int, k: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    for _ in range(burst):
        assert bucket.take() == 0.0
    assert bucket.take() > 0
    clock.now += k / rate
    allowed = min(k, burst)  # the bucket holds at most `burst`
    assert [bucket.take() for _ in range(allowed)] == [0.0] * allowed
    assert bucket.take() > 0


def test_an_idle_bucket_holds_no_more_than_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=3, clock=clock)
    clock.now += 3600
    assert [bucket.take() == 0.0 for _ in range(4)] == [True, True, True, False]


@given(
    rate=st.floats(0.1, 100.0),
    burst=st.integers(1, 10),
    steps=st.lists(st.tuples(st.floats(0.0, 2.0), st.integers(0, 5)), max_size=30),
)
def test_allowed_never_exceeds_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock(1000.0)
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    allowed = 0
    for advance, tries in steps:
        clock.now += advance
        for _ in range(tries):
            wait = bucket.take()
            assert wait >= 0
            if wait == 0.0:
                allowed += 1
            else:
                assert wait <= 1 / rate * (1 + 1e-9)
        elapsed = clock.now - 1000.0
        assert allowed <= burst + rate * elapsed + 1e-6


def test_waiting_the_time_a_denial_names_is_enough() -> None:
    """`take` promises "the seconds until one is free": after waiting that long,
    the next publish must be allowed. Float rounding in tokens + wait · rate leaves
    the bucket a hair under one token (0.9999999999997726), so a client that waits
    exactly as told is refused again."""
    clock = FakeClock(1000.0)
    bucket = TokenBucket(rate=7.0, burst=1, clock=clock)
    assert bucket.take() == 0.0
    clock.now += 0.01 / 7.0
    wait = bucket.take()
    assert wait > 0
    clock.now += wait
    assert bucket.take() == 0.0


# -- recovery ------------------------------------------------------------------------


def test_recoverable_rules() -> None:
    # another epoch: offsets mean nothing
    assert not recoverable(5, False, 10, 6, 100)
    assert not recoverable(10, False, 10, None, 100)
    # nothing missed
    assert recoverable(10, True, 10, None, 100)
    # a position past the tip cannot be from this history
    assert not recoverable(11, True, 10, None, 100)
    # the normal case: since + 1 is kept and inside the window
    assert recoverable(5, True, 10, 6, 100)
    assert recoverable(0, True, 10, 1, 100)
    # since + 1 pruned already
    assert not recoverable(5, True, 10, 7, 100)
    assert not recoverable(5, True, 10, None, 100)
    # since + 1 at or below tip - history_size counts as gone
    assert not recoverable(5, True, 10, 6, 4)  # 6 <= 10 - 4
    assert recoverable(5, True, 10, 6, 5)  # 6 > 10 - 5


def test_recoverable_history_window_boundary() -> None:
    # replaying since+1 .. tip needs tip - since offsets; the channel keeps history_size
    assert recoverable(90, True, 100, 91, 10)  # 10 to replay, 10 kept
    assert not recoverable(89, True, 100, 90, 10)  # 11 to replay, 10 kept
    assert recoverable(99, True, 100, 100, 1)
    assert not recoverable(98, True, 100, 99, 1)


@given(
    since=st.integers(0, 50),
    same_epoch=st.booleans(),
    tip=st.integers(0, 50),
    first_kept=st.none() | st.integers(0, 51),
    history_size=st.integers(1, 60),
)
def test_recoverable_means_a_gapless_replay_within_history(
    since: int, same_epoch: bool, tip: int, first_kept: int | None, history_size: int
) -> None:
    result = recoverable(since, same_epoch, tip, first_kept, history_size)
    if result:
        assert same_epoch
        assert since <= tip
        if since < tip:
            assert first_kept == since + 1  # no gap before the replay
            assert tip - since <= history_size  # every replayed offset still counts as kept
    else:
        assert (
            not same_epoch
            or since > tip
            or (since < tip and (first_kept != since + 1 or tip - since > history_size))
        )


def test_after_replay_keeps_only_what_the_replay_did_not_deliver() -> None:
    def on(channel: str, offsets: list[int]) -> list[tuple[str, int]]:
        return [(channel, o) for o in offsets]

    assert after_replay(on("c", [3, 5, 6, 7]), {"c": 5}) == [2, 3]
    assert after_replay(on("c", [3, 4]), {"c": 5}) == []
    assert after_replay([], {"c": 5}) == []
    assert after_replay(on("c", [6, 7]), {"c": 5}) == [0, 1]
    assert after_replay([("a", 2), ("b", 2), ("new", 1)], {"a": 1, "b": 2}) == [0, 2]


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 100)), max_size=20),
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 100)),
)
def test_after_replay_partitions_the_buffer(
    held: list[tuple[str, int]], replayed_to: dict[str, int]
) -> None:
    keep = after_replay(held, replayed_to)
    assert keep == sorted(keep)
    assert all(held[i][1] > replayed_to.get(held[i][0], 0) for i in keep)
    skipped = [i for i in range(len(held)) if i not in keep]
    assert all(held[i][1] <= replayed_to.get(held[i][0], 0) for i in skipped)


# -- popularity ---------------------------------------------------------------------


def test_popularity_counts_an_application_as_two_votes() -> None:
    assert popularity(0, 0) == 0
    assert popularity(3, 0) == 3
    assert popularity(0, 3) == 6
    assert popularity(5, 2) == 9
    assert popularity(2, 1) == popularity(4, 0)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 100))
def test_popularity_is_monotone_in_votes_and_applications(
    votes: int, applications: int, more: int
) -> None:
    base = popularity(votes, applications)
    assert base == votes + 2 * applications
    assert popularity(votes + more, applications) > base
    assert popularity(votes, applications + more) > base
    assert popularity(votes, applications + more) > popularity(votes + more, applications)


# -- registry and routing -------------------------------------------------------------


@dataclass
class FakeSink:
    written: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def buffered(self) -> int:
        return 0

    def closing(self) -> bool:
        return False

    def close_slow(self) -> None:
        pass


def peer(tenant: str = "t1") -> Peer:
    return Peer(tenant, FakeSink(), Outbox(max_bytes=1 << 20, max_drops=10))


def subscribe(
    registry: Registry,
    who: Peer,
    pattern: str,
    min_priority: Priority = Priority.LOW,
    types: set[str] | None = None,
    recovering: bool = False,
) -> Sub:
    sub = Sub(
        who,
        pattern,
        min_priority.rank,
        None if types is None else frozenset(types),
        [] if recovering else None,
    )
    who.subs[pattern] = sub
    registry.add(sub)
    return sub


def delivery(
    channel: str,
    offset: int = 1,
    priority: Priority = Priority.MEDIUM,
    kind: KnowledgeType = KnowledgeType.SOLUTION,
) -> Delivery:
    return Delivery(channel, offset, priority.rank, kind.value, numbered(offset))


def deliver(registry: Registry, tenant: str, d: Delivery) -> list[tuple[Peer, Delivery]]:
    return [(p, d) for p in route(registry.targets(tenant, d.channel), d)]


def test_two_matching_subscriptions_give_one_delivery() -> None:
    registry, alice = Registry(), peer()
    subscribe(registry, alice, "code.python")
    subscribe(registry, alice, "code.*")
    subscribe(registry, alice, "code.>")
    d = delivery("code.python")
    assert deliver(registry, "t1", d) == [(alice, d)]
    assert registry.count() == 3


def test_each_connection_gets_its_own_delivery() -> None:
    registry, alice, bob = Registry(), peer(), peer()
    subscribe(registry, alice, "code")
    subscribe(registry, bob, "*")
    d = delivery("code")
    got = deliver(registry, "t1", d)
    assert sorted(id(p) for p, _ in got) == sorted([id(alice), id(bob)])
    assert all(x is d for _, x in got)


def test_min_priority_and_types_filter_deliveries() -> None:
    registry, alice = Registry(), peer()
    subscribe(registry, alice, "code", min_priority=Priority.HIGH, types={"WARNING"})
    assert deliver(registry, "t1", delivery("code", priority=Priority.MEDIUM)) == []
    assert deliver(registry, "t1", delivery("code", priority=Priority.CRITICAL)) == []
    warning = delivery("code", priority=Priority.HIGH, kind=KnowledgeType.WARNING)
    assert deliver(registry, "t1", warning) == [(alice, warning)]
    late = delivery("code", priority=Priority.LOW, kind=KnowledgeType.WARNING)
    assert deliver(registry, "t1", late) == []


def test_sub_wants() -> None:
    who = peer()
    sub = Sub(who, "code", Priority.MEDIUM.rank, frozenset({"SOLUTION", "PATTERN"}))
    assert sub.wants(Priority.MEDIUM.rank, "SOLUTION")
    assert sub.wants(Priority.CRITICAL.rank, "PATTERN")
    assert not sub.wants(Priority.LOW.rank, "SOLUTION")
    assert not sub.wants(Priority.HIGH.rank, "WARNING")
    anything = Sub(who, "code", Priority.LOW.rank, None)
    assert all(anything.wants(p.rank, k.value) for p in Priority for k in KnowledgeType)


def test_a_second_subscription_that_wants_what_the_first_filters_out_delivers() -> None:
    registry, alice = Registry(), peer()
    subscribe(registry, alice, "code", min_priority=Priority.CRITICAL)
    subscribe(registry, alice, "code.>")
    subscribe(registry, alice, "*", types={"WARNING"})
    d = delivery("code", priority=Priority.LOW, kind=KnowledgeType.WARNING)
    assert deliver(registry, "t1", d) == [(alice, d)]


def test_a_recovering_subscription_buffers_instead_of_delivering() -> None:
    registry, alice = Registry(), peer()
    sub = subscribe(registry, alice, "code.*", recovering=True)
    first, second = delivery("code.py", 1), delivery("code.py", 2)
    assert deliver(registry, "t1", first) == []
    assert deliver(registry, "t1", second) == []
    assert sub.buffer == [first, second]
    # once live, deliveries go to the outbox again
    sub.buffer = None
    third = delivery("code.py", 3)
    assert deliver(registry, "t1", third) == [(alice, third)]


def test_a_live_subscription_wins_over_a_recovering_one() -> None:
    registry, alice = Registry(), peer()
    recovering = subscribe(registry, alice, "code", recovering=True)
    subscribe(registry, alice, "*")
    d = delivery("code")
    assert deliver(registry, "t1", d) == [(alice, d)]
    assert recovering.buffer == []


def test_a_recovering_subscription_buffers_only_what_it_wants() -> None:
    registry, alice = Registry(), peer()
    sub = subscribe(registry, alice, "code", min_priority=Priority.HIGH, recovering=True)
    assert deliver(registry, "t1", delivery("code", priority=Priority.LOW)) == []
    assert sub.buffer == []


def test_remove_stops_delivery() -> None:
    registry, alice = Registry(), peer()
    exact = subscribe(registry, alice, "code")
    pattern = subscribe(registry, alice, "*")
    assert len(deliver(registry, "t1", delivery("code"))) == 1  # cached targets
    registry.remove(exact)
    assert len(deliver(registry, "t1", delivery("code"))) == 1
    registry.remove(pattern)
    assert deliver(registry, "t1", delivery("code")) == []
    assert registry.count() == 0


def test_pattern_subscriptions_match_channels_created_later() -> None:
    registry, alice = Registry(), peer()
    subscribe(registry, alice, "team.>")
    assert deliver(registry, "t1", delivery("other")) == []
    for channel in ("team.new", "team.new.deep", "team.another"):
        d = delivery(channel)
        assert deliver(registry, "t1", d) == [(alice, d)]
    assert deliver(registry, "t1", delivery("team")) == []


def test_subscriptions_added_after_a_lookup_are_seen() -> None:
    registry, alice, bob = Registry(), peer(), peer()
    subscribe(registry, alice, "code")
    assert len(deliver(registry, "t1", delivery("code"))) == 1
    subscribe(registry, bob, "code.>")
    subscribe(registry, bob, "code")
    got = deliver(registry, "t1", delivery("code"))
    assert sorted(id(p) for p, _ in got) == sorted([id(alice), id(bob)])


def test_tenants_do_not_see_each_others_subscriptions() -> None:
    registry, alice, mallory = Registry(), peer("t1"), peer("t2")
    subscribe(registry, alice, "code")
    subscribe(registry, mallory, ">")
    d = delivery("code")
    assert deliver(registry, "t1", d) == [(alice, d)]
    assert deliver(registry, "t2", d) == [(mallory, d)]
    assert deliver(registry, "t3", d) == []

"""When a subscriber's missed messages can be replayed.

A channel keeps its last `history_size` offsets, as long as they are younger than
the history TTL. A subscriber that saw up to offset `since` in epoch `e` recovers
when `e` is still the channel's epoch and either nothing came after `since`, or
offset `since + 1` is still kept: replaying `since + 1 … tip` then leaves no gap.
"""


def recoverable(
    since: int, same_epoch: bool, tip: int, first_kept: int | None, history_size: int
) -> bool:
    """`first_kept`: the lowest offset above `since` still stored and young enough
    (None if there is none); offsets at or below `tip − history_size` count as gone
    even before the pruner deletes them."""
    if not same_epoch or since > tip:
        return False
    if since == tip:
        return True
    return first_kept == since + 1 and since + 1 > tip - history_size


def after_replay(held: list[tuple[str, int]], replayed_to: dict[str, int]) -> list[int]:
    """Indexes of the live (channel, offset)s held during a replay that still need
    delivering: those past the offset their channel was replayed to, so none comes
    twice."""
    return [i for i, (channel, offset) in enumerate(held) if offset > replayed_to.get(channel, 0)]

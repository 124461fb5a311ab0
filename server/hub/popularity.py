"""How popular a piece of knowledge is."""

APPLICATION_WEIGHT = 2.0


def popularity(votes: int, applications: int) -> float:
    """popularity = votes + 2 · applications.

    both count as engagement; an application (an agent used the knowledge
    in its work) is stronger evidence of worth than a vote (it looked useful), so it
    counts double. Linear, so ties and orderings are easy to explain."""
    return votes + APPLICATION_WEIGHT * applications

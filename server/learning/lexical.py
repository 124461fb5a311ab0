"""Which query terms the BM25 search reads, within a budget of postings.

FTS5 scores a query by walking the whole doclist of every term in it, and its
bm25() first counts each term's documents the same way, so a query costs time in
proportion to the documents its terms appear in: at 128,000 learnings an OR of a
paraphrase's words read 20,000 to 30,000 postings (15 to 60 ms). The terms that
are common are also the ones BM25 weighs least (idf = ln((N − n + ½)/(n + ½) + 1),
Robertson & Zaragoza, 2009) and the ones embeddings already cover; what lexical
search adds is the rare exact term (an error name, a tool). So the search takes
the query's terms rarest first while their document counts add up to at most
the budget; on a small store every term fits and nothing changes.

Document counts come from the store and are kept for a while: they move slowly,
and a query's terms mostly recur across queries.
"""

from collections import OrderedDict
from collections.abc import Iterable, Sequence


class DocumentFrequencies:
    """Term → how many learnings' documents hold it, remembered for `ttl_s`
    (at most `size` terms, least recently used forgotten first)."""

    def __init__(self, ttl_s: float, size: int = 50_000) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def missing(self, words: Iterable[str], now: float) -> list[str]:
        """The words whose count is unknown or older than the time to live."""
        return [w for w in words if not self._fresh(w, now)]

    def _fresh(self, word: str, now: float) -> bool:
        found = self._counts.get(word)
        if found is None or now - found[1] > self._ttl_s:
            return False
        self._counts.move_to_end(word)
        return True

    def learn(self, words: Sequence[str], counts: Sequence[int], now: float) -> None:
        for word, count in zip(words, counts, strict=True):
            self._counts[word] = (count, now)
            self._counts.move_to_end(word)
        while len(self._counts) > self._size:
            self._counts.popitem(last=False)

    def rarest(self, words: Iterable[str], budget: int) -> list[str]:
        """The words found at all, rarest first, while their counts sum to ≤ budget."""
        known = [(self._counts[w][0], w) for w in words if w in self._counts]
        chosen, total = [], 0
        for count, word in sorted(c for c in known if c[0] > 0):
            if total + count > budget:
                break
            chosen.append(word)
            total += count
        return chosen

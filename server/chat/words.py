"""Words of chat text: tokens, stop-words and the content-word runs keyphrases come from.

Tokens keep the punctuation that belongs to technical names (node.js, docker-compose,
c++, c#, max_retries). Fenced code blocks and URLs are cut out before tokenising:
their identifiers (self, def, https) describe syntax, not what the session is about.
"""

import re
from collections.abc import Iterator

_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_URL = re.compile(r"\b(?:https?|ftp)://\S+")
_TOKEN = re.compile(r"\w+(?:[-.]\w+)*(?:\+\+|#)?")
# Words joined by spaces or tabs only stay in one run; a newline or any punctuation
# ends it, as phrase delimiters do in RAKE (Rose et al. 2010, "candidate keywords").
_JOINABLE_GAP = re.compile(r"[^\S\n]+")

# English function words (the NLTK English list, contractions split at the
# apostrophe), the adverbs, quantifiers and number words of the Glasgow list that
# scikit-learn ships (without its nouns: system, name, detail, part...), and chat
# fillers and light verbs, which carry no topic in a conversation. Topic words are
# never listed: topics come from the text itself.
_FUNCTION_WORDS = """
a about above after again against all am an and any are aren as at be because been
before being below between both but by can couldn d did didn do does doesn doing don
down during each few for from further had hadn has hasn have haven having he her here
hers herself him himself his how i if in into is isn it its itself just ll m ma me
mightn more most mustn my myself needn no nor not now o of off on once only or other
our ours ourselves out over own re s same shan she should shouldn so some such t than
that the their theirs them themselves then there these they this those through to too
under until up ve very was wasn we were weren what when where which while who whom why
will with won wouldn y you your yours yourself yourselves
"""
_GLASGOW_ADVERBS = """
across afterwards almost alone along already also although always among amongst
another anyhow anyone anything anyway anywhere around back became become becomes
becoming beforehand behind beside besides beyond cannot could eg eight either eleven
else elsewhere enough etc even ever every everyone everything everywhere except
fifteen fifty first five former formerly forty four hence hereafter hereby herein
however hundred ie indeed inside instead last latter latterly least less many may
meanwhile might mine moreover mostly much must namely neither never nevertheless next
nine nobody none noone nothing nowhere often onto others otherwise outside perhaps
per rather several since six sixty someone something sometime sometimes somewhere
still ten thence thereafter thereby therefore therein thereupon third three
throughout thru thus together toward towards twelve twenty two upon us usually via
whatever whence whenever whereafter whereas whereby wherein whereupon wherever whether
whither whoever whole whose within without would yet
"""
_CHAT_FILLERS = """
actually basically bit come comes coming definitely done example exactly fine gets
getting give gives go goes going got great guess hello help hey hi hmm keep keeps
know let lets like likely look looks made make makes maybe mean means nice oh ok okay
one ones please pretty probably put quite really right say says see seem seems shall
show something sorry sure take takes tell thank thanks thing things think though thx
try trying understand use used uses using want wants way well works worked yeah yes
"""
STOPWORDS = frozenset((_FUNCTION_WORDS + _GLASGOW_ADVERBS + _CHAT_FILLERS).split())


def without_code(text: str) -> str:
    """The text with fenced code blocks and URLs replaced by line breaks, so no run
    of words spans the cut."""
    return _URL.sub("\n", _FENCED_CODE.sub("\n", text))


def prose(text: str) -> str:
    """The lower-cased text without code blocks and URLs."""
    return without_code(text.lower())


def is_content_word(word: str) -> bool:
    """Not a stop-word, not a bare number, and longer than one character."""
    return len(word) > 1 and word not in STOPWORDS and not word.isdigit()


def words(text: str) -> list[str]:
    """Every token of the prose, lower-cased, stop-words included."""
    return _TOKEN.findall(prose(text))


def content_runs(text: str) -> Iterator[list[str]]:
    """Maximal runs of content words that are adjacent in the text (separated by
    spaces or tabs only). Each run, joined by single spaces, is a substring of the
    lower-cased text once its space and tab runs are collapsed to one space."""
    lowered = prose(text)
    run: list[str] = []
    previous_end = 0
    for match in _TOKEN.finditer(lowered):
        if run and not _JOINABLE_GAP.fullmatch(lowered[previous_end : match.start()]):
            yield run
            run = []
        word, previous_end = match.group(), match.end()
        if is_content_word(word):
            run.append(word)
        elif run:
            yield run
            run = []
    if run:
        yield run


def fold(word: str) -> str:
    """Plural `s` folded (networks → network, but class stays class), as in
    server.core.text."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> frozenset[str]:
    """The folded content words of a text: what two messages share when one re-asks
    the other."""
    return frozenset(fold(w) for w in words(text) if is_content_word(w))

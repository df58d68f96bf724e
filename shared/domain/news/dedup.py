"""Which items are the same article, and which articles are the same story.

Pure and deterministic across processes (hashes are BLAKE2b/SHA-256, never the built-in
``hash()``); nothing here reads a clock, a file or the environment.

* An *item* is one entry of one feed; :func:`item_key` names it: the same article listed by
  two feeds (or polled twice) has one key.
* A *story* is what several outlets (or several items of one outlet) report:
  :class:`StoryIndex` puts an item into the story of an earlier item when they share a
  normalised URL (:func:`normalize_url`) or when their titles' SimHash fingerprints
  (:func:`title_fingerprint`) are within :data:`MAX_TITLE_DISTANCE` bits.

Why the title threshold is 3 bits, and what it means for short headlines
------------------------------------------------------------------------
Three bits of a 64-bit SimHash is the near-duplicate threshold of Manku, Jain and Das
Sarma ("Detecting near-duplicates for web crawling", WWW 2007). It is strict on purpose:
it also lets the index find candidates with four 16-bit bands (by pigeonhole, two
fingerprints within 3 bits agree on at least one band), and, above all, for a risk
platform merging two *different* events is worse than counting one event twice: "RBI keeps
repo rate unchanged at 6.5%" and "RBI cuts repo rate to 6.25%" must stay two stories.

A headline has only 5-10 tokens, and the SimHash distance of two token sets grows with
the angle between them: swapping one token of seven moves about 10 of the 64 bits. So at
3 bits the title test means "the same words, once normalised", and the normalisation does
the work of recognising light rewording:

* lower case (NFKC), apostrophes and possessives dropped, dotted abbreviations joined
  (``U.S.`` -> ``us``), punctuation removed, numbers kept whole (``6.5``, ``1,000`` ->
  ``1000``, ``6.50`` -> ``6.5``);
* ``%``, ``per cent``, ``pct`` -> ``percent``; ``₹``/``rupees``/``inr`` -> ``rs``;
  ``basis points``/``bp`` -> ``bps``; ``crore``/``cr``, ``billion``/``bn``,
  ``million``/``mn``;
* a crude plural/3rd-person ``-s`` strip (``keeps`` -> ``keep``, ``rates`` -> ``rate``);
* headline synonyms folded to one word each: keep/hold/retain/leave/maintain -> ``hold``;
  hike/raise/increase/lift -> ``raise``; cut/lower/reduce/slash/trim -> ``cut``;
  rise/rose/gain/climb/advance -> ``rise``; fall/fell/drop/decline/slip/slide -> ``fall``;
* a small English stopword list removed (articles, prepositions, auxiliaries, "says");
  negations (``not``, ``no``) are kept, since they change the event.

Features are the *set* of single tokens (word order and repeats ignored), each weighted 1
and hashed with 64-bit BLAKE2b; a bit is set when more than half the tokens set it. Word
shingles were not used: on a headline they double the number of features one substituted
word changes.

Fingerprints are unsigned 64-bit ints; :class:`StoryIndex` also accepts them as a signed
Postgres ``bigint`` (two's complement) and masks them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit

from shared.domain.news.items import FeedItem

__all__ = ["MAX_TITLE_DISTANCE", "Story", "StoryIndex", "TRACKING_PARAMS", "hamming",
           "item_key", "normalize_url", "title_fingerprint", "title_tokens"]

MAX_TITLE_DISTANCE = 3
"""Titles whose fingerprints differ in at most this many bits are the same story."""

_MASK64 = (1 << 64) - 1

TRACKING_PARAMS: frozenset[str] = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ref",
    "ref_src", "ref_url", "referrer", "cmpid", "icid", "ncid", "ito", "s_cid", "sr_share",
    "from", "homepage", "amp",
})
"""Query parameters that say how a reader arrived, not which article (compared in lower
case; every ``utm_*`` parameter too). ``from``, ``homepage`` and ``amp`` are what Indian
news sites add (``?from=mdr``, ``?homepage=true``, ``?amp=1``)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}

_STOPWORDS = frozenset((
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "and", "or", "but", "by", "with",
    "from", "as", "into", "onto", "over", "after", "amid", "about", "is", "are", "was", "were",
    "be", "been", "being", "am", "it", "its", "this", "that", "these", "those", "there",
    "their", "his", "her", "they", "he", "she", "we", "you", "i", "our", "your", "my", "will",
    "would", "shall", "should", "can", "could", "may", "might", "must", "do", "does", "did",
    "has", "have", "had", "having", "says", "said", "say", "than", "then", "so", "if", "while",
    "also", "just",
))

# After the -s strip: each word -> its canonical form.
_SYNONYMS = {
    **dict.fromkeys(("keep", "hold", "retain", "leave", "maintain", "kept", "held",
                     "retained", "maintained", "left"), "hold"),
    **dict.fromkeys(("hike", "raise", "increase", "lift", "hiked", "raised", "increased",
                     "lifted"), "raise"),
    **dict.fromkeys(("cut", "lower", "reduce", "slash", "trim", "lowered", "reduced",
                     "slashed", "trimmed"), "cut"),
    **dict.fromkeys(("rise", "rose", "gain", "climb", "advance", "gained", "climbed",
                     "advanced", "risen"), "rise"),
    **dict.fromkeys(("fall", "fell", "drop", "decline", "slip", "slide", "dropped",
                     "declined", "slipped", "fallen"), "fall"),
    **dict.fromkeys(("percent", "pct", "percentage"), "percent"),
    **dict.fromkeys(("rupee", "inr", "rs"), "rs"),
    **dict.fromkeys(("bp", "bps", "bpt"), "bps"),
    "crore": "cr", "billion": "bn", "million": "mn", "govt": "government",
}
# Two-word phrases folded before the rest (on the raw tokens).
_PHRASES = {("per", "cent"): "percent", ("basis", "point"): "bps",
            ("basis", "points"): "bps"}
_PHRASE_STARTS = frozenset(first for first, _ in _PHRASES)

_ABBREV = re.compile(r"\b(?:[^\W\d_]\.){2,}")
_POSSESSIVE = re.compile(r"['\u2019]s\b")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_SYMBOLS = str.maketrans({"%": " percent ", "\u20b9": " rs ", "'": "", "\u2019": "",
                          "\u2018": ""})


# ---------------------------------------------------------------------------- URLs


def normalize_url(url: str) -> str:
    """The form of an article URL that two links to the same article share.

    Scheme and host lower-cased, ``http`` read as ``https``, ``www.`` and a trailing dot
    dropped from the host, user info and default ports dropped, the fragment dropped,
    tracking parameters (``utm_*`` and :data:`TRACKING_PARAMS`) dropped, the remaining
    query parameters sorted (and re-encoded), trailing slashes of the path dropped. The path
    keeps its case. A string without a scheme and host is returned stripped, unchanged.

    Parameters
    ----------
    url
        An absolute URL.

    Returns
    -------
    str
        The normalised URL; ``normalize_url(normalize_url(u)) == normalize_url(u)``.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal: nothing to normalise by
        return text
    host = parts.hostname
    scheme = parts.scheme.lower()
    if not scheme or not host:
        return text
    if scheme == "http":
        scheme = "https"
    host = host.rstrip(".")
    while host.startswith("www.") and "." in host[4:]:
        host = host[4:]
    if ":" in host:  # IPv6
        host = f"[{host}]"
    # the default port of the scheme read, or of the scheme written (idempotence)
    if port is not None and port not in (_DEFAULT_PORTS.get(parts.scheme.lower()),
                                         _DEFAULT_PORTS[scheme]):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = ""
    if parts.query:
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                  if not _is_tracking(k)]
        query = urlencode(sorted(params))
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("utm_") or lowered in TRACKING_PARAMS


# ---------------------------------------------------------------------------- titles


def title_tokens(title: str) -> tuple[str, ...]:
    """The normalised word tokens a title's fingerprint is built from (module docstring).

    Falls back to the words before stopword removal when only stopwords are left, and to
    the whole lower-cased title when it has no word at all.

    Parameters
    ----------
    title
        A plain-text title.

    Returns
    -------
    tuple of str
        Distinct tokens, sorted.
    """
    raw = _raw_tokens(title)
    tokens: set[str] = set()
    skip = False
    for i, word in enumerate(raw):
        if skip:
            skip = False
            continue
        if word in _PHRASE_STARTS and i + 1 < len(raw):
            phrase = _PHRASES.get((word, raw[i + 1]))
            if phrase is not None:
                tokens.add(phrase)
                skip = True
                continue
        if word not in _STOPWORDS:
            tokens.add(_canonical(word))
    if not tokens:
        tokens = {_canonical(w) for w in raw}
    if not tokens:
        whole = " ".join(title.lower().split())
        tokens = {whole} if whole else set()
    return tuple(sorted(tokens))


def title_fingerprint(title: str) -> int:
    """The 64-bit SimHash of a title's normalised tokens (:func:`title_tokens`).

    Parameters
    ----------
    title
        A plain-text title.

    Returns
    -------
    int
        In ``[0, 2**64)``; equal titles (once normalised) give equal fingerprints, and the
        value is the same in every process and on every machine.
    """
    tokens = title_tokens(title)
    if not tokens:
        return 0
    if len(tokens) == 1:
        return _token_hash(tokens[0])
    return _majority([_token_hash(t) for t in tokens])


def _majority(words: list[int]) -> int:
    """The 64-bit word whose bit ``i`` is set when more than half of ``words`` set it.

    Bit-sliced: ``planes[j]`` holds bit ``j`` of all 64 per-position counts, so adding a word
    is a ripple-carry over a handful of planes, and the comparison with the threshold a
    walk down the planes; about 40 integer operations per title instead of 64 per token.
    """
    need = len(words) // 2 + 1  # count >= need  <=>  count > len/2
    planes = [0] * len(words).bit_length()
    for word in words:
        carry, j = word, 0
        while carry:  # the count never overflows the planes: len(words) fits them
            plane = planes[j]
            planes[j] = plane ^ carry
            carry &= plane
            j += 1
    greater, equal = 0, _MASK64
    for j in range(len(planes) - 1, -1, -1):
        plane = planes[j]
        if (need >> j) & 1:
            equal &= plane
        else:
            greater |= equal & plane
            equal &= ~plane
    return (greater | equal) & _MASK64


def hamming(a: int, b: int) -> int:
    """The number of bits in which two 64-bit fingerprints differ (signed values masked)."""
    return ((a ^ b) & _MASK64).bit_count()


def _raw_tokens(title: str) -> list[str]:
    text = title.lower() if title.isascii() else unicodedata.normalize("NFKC", title).lower()
    if "'" in text or "\u2019" in text:
        text = _POSSESSIVE.sub("", text)
    if "." in text:
        text = _ABBREV.sub(lambda m: m.group().replace(".", ""), text)
    return [_number(t) if t[0].isdigit() else t for t in _TOKEN.findall(text.translate(_SYMBOLS))]


def _number(token: str) -> str:
    token = token.replace(",", "")
    if "." in token:
        token = token.rstrip("0").rstrip(".") or "0"
    return token


@lru_cache(maxsize=65536)
def _canonical(word: str) -> str:
    if word in _SYNONYMS:
        return _SYNONYMS[word]
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return _SYNONYMS.get(word, word)


@lru_cache(maxsize=65536)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(),
                          "little")


# ---------------------------------------------------------------------------- items


def item_key(item: FeedItem) -> str:
    """A stable key for one article: the same article from two feeds has one key.

    SHA-256 (hex) of the normalised link; else of the source and guid; else of the source
    and the title's lower-cased words. The three kinds are prefixed differently before
    hashing, so they never collide with each other.

    Parameters
    ----------
    item
        A parsed feed item.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    return _item_key(item, normalize_url(item.link) if item.link else None)


def _item_key(item: FeedItem, url: str | None) -> str:
    if url:
        basis = "url\x1f" + url
    elif item.guid:
        basis = f"guid\x1f{item.source}\x1f{item.guid}"
    else:
        basis = f"title\x1f{item.source}\x1f" + " ".join(_raw_tokens(item.title))
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- stories


@dataclass(frozen=True, slots=True)
class Story:
    """One story as the index knows it.

    Attributes
    ----------
    story_id
        The :func:`item_key` of its first item (or the id it was stored with).
    fingerprint
        The title fingerprint of its first item (unsigned).
    urls
        The normalised URLs known for it, in the order seen.
    sources
        The sources of the items assigned to it by this index, in the order seen (without
        repeats); a stored story's earlier sources are not known here.
    item_keys
        The keys of the items assigned to it by this index.
    known
        It was given to the index as a stored story (an earlier poll).
    """

    story_id: str
    fingerprint: int
    urls: tuple[str, ...]
    sources: tuple[str, ...]
    item_keys: tuple[str, ...]
    known: bool


@dataclass(slots=True)
class _State:
    story_id: str
    fingerprint: int
    known: bool
    order: int
    urls: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    item_keys: list[str] = field(default_factory=list)
    fingerprints: set[int] = field(default_factory=set)


class StoryIndex:
    """Assigns items to stories: by :func:`item_key`, normalised URL, or title fingerprint.

    An item joins, in this order of precedence, the story of an item with the same key
    (the same article seen again), the story with the same normalised URL, or the story
    with the nearest title fingerprint within :data:`MAX_TITLE_DISTANCE` bits (ties: the
    story created first). Otherwise it starts a story whose id is its own :func:`item_key`.
    Every fingerprint of a story's items is indexed, so a story is found through any of
    its titles. Finding candidates costs four dictionary look-ups (16-bit bands), not a scan.

    Parameters
    ----------
    known
        Stories already stored (an earlier poll): ``(story_id, fingerprint, normalised
        urls)``. A fingerprint stored as a signed ``bigint`` is accepted.
    """

    def __init__(self, known: Iterable[tuple[str, int, Iterable[str]]] = ()) -> None:
        self._stories: dict[str, _State] = {}
        self._by_item: dict[str, str] = {}
        self._by_url: dict[str, str] = {}
        self._bands: dict[int, list[tuple[int, int, str]]] = {}
        for story_id, fingerprint, urls in known:
            if story_id in self._stories:
                raise ValueError(f"StoryIndex: story {story_id!r} is known twice")
            state = self._new_state(story_id, int(fingerprint) & _MASK64, known=True)
            for url in urls:
                self._add_url(state, url)

    def assign(self, item: FeedItem) -> tuple[str, bool]:
        """Put an item into a story.

        Parameters
        ----------
        item
            A parsed feed item.

        Returns
        -------
        tuple of (str, bool)
            The story's id, and whether this item started it.
        """
        url = normalize_url(item.link) if item.link else None
        key = _item_key(item, url)
        fingerprint = title_fingerprint(item.title)
        story_id = self._by_item.get(key)
        if story_id is None and key in self._stories:
            story_id = key
        if story_id is None and url is not None:
            story_id = self._by_url.get(url)
        if story_id is None:
            story_id = self._nearest(fingerprint)
        is_new = story_id is None
        if story_id is None:
            state = self._new_state(key, fingerprint, known=False)
        else:
            state = self._stories[story_id]
            self._index_fingerprint(state, fingerprint)
        if url is not None:
            self._add_url(state, url)
        if key not in self._by_item:
            self._by_item[key] = state.story_id
            state.item_keys.append(key)
        if item.source not in state.sources:
            state.sources.append(item.source)
        return state.story_id, is_new

    def story(self, story_id: str) -> Story:
        """The story with this id (``KeyError`` if the index has none)."""
        s = self._stories[story_id]
        return Story(story_id=s.story_id, fingerprint=s.fingerprint, urls=tuple(s.urls),
                     sources=tuple(s.sources), item_keys=tuple(s.item_keys), known=s.known)

    def stories(self, *, include_known: bool = True) -> tuple[Story, ...]:
        """Every story, known ones first, then in the order they were started; with
        ``include_known=False``, only those started by :meth:`assign` and the known ones
        that got items."""
        return tuple(self.story(sid) for sid, s in self._stories.items()
                     if include_known or not s.known or s.item_keys)

    def __len__(self) -> int:
        return len(self._stories)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._stories

    # -------------------------------------------------------------------- internals

    def _new_state(self, story_id: str, fingerprint: int, *, known: bool) -> _State:
        state = _State(story_id=story_id, fingerprint=fingerprint, known=known,
                       order=len(self._stories))
        self._stories[story_id] = state
        self._index_fingerprint(state, fingerprint)
        return state

    def _add_url(self, state: _State, url: str) -> None:
        if url not in self._by_url:
            self._by_url[url] = state.story_id
        if url not in state.urls:
            state.urls.append(url)

    def _index_fingerprint(self, state: _State, fingerprint: int) -> None:
        if fingerprint in state.fingerprints:
            return
        state.fingerprints.add(fingerprint)
        entry = (fingerprint, state.order, state.story_id)
        bands = self._bands
        for band_key in _band_keys(fingerprint):
            found = bands.get(band_key)
            if found is None:
                bands[band_key] = [entry]
            else:
                found.append(entry)

    def _nearest(self, fingerprint: int) -> str | None:
        best: tuple[int, int, str] | None = None
        bands = self._bands
        for band_key in _band_keys(fingerprint):
            for other, order, story_id in bands.get(band_key, ()):
                distance = (fingerprint ^ other).bit_count()
                if distance <= MAX_TITLE_DISTANCE and (
                        best is None or (distance, order) < best[:2]):
                    best = (distance, order, story_id)
        return None if best is None else best[2]


def _band_keys(fingerprint: int) -> tuple[int, ...]:
    """The index keys of a fingerprint: its four 16-bit bands, each tagged with its place."""
    return (fingerprint & 0xFFFF, 0x10000 | ((fingerprint >> 16) & 0xFFFF),
            0x20000 | ((fingerprint >> 32) & 0xFFFF), 0x30000 | (fingerprint >> 48))

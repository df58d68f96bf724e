"""Parse one fetched RSS/Atom body into :class:`~shared.domain.news.items.FeedItem` values.

Pure: the body is given as bytes, "now" is an argument, nothing here opens a file or a
socket or reads a clock. Parsing is feedparser's (RSS 0.9x/1.0/2.0, Atom 0.3/1.0); this
module decides what is usable and turns feedparser's loose dictionaries into plain values.

What a feed can do wrong, and what happens
------------------------------------------
The whole feed is rejected (:class:`~shared.domain.news.items.FeedRejected`, the other
feeds carry on) with one of these ``reason_code`` values:

``too_large``
    ``len(body) > max_bytes``; checked before anything is parsed.
``empty``
    The body is empty or only whitespace (a server answering 200 with nothing). A
    well-formed feed with no entries is *not* rejected: it parses to a
    :class:`~shared.domain.news.items.ParsedFeed` with no items.
``not_a_feed``
    An HTML page (a login wall, an error page: the document's root is ``<html>`` or
    ``<!DOCTYPE html>``, or it was served as ``text/html`` and has no RSS/Atom/RDF root),
    or feedparser recognised no feed format in it.
``encoding``
    No entries could be read and the bytes are not valid in the encoding the document
    declares (BOM, XML declaration, else the ``charset`` of ``content_type``, else UTF-8),
    the declaration names UTF-16/32 but is itself in single bytes, or feedparser reported
    a character-encoding problem.
``malformed``
    Not well-formed XML (feedparser's *bozo* flag) and no entry could be read.

A feed that is not well-formed but from which feedparser recovered entries (a body cut
short, an undeclared entity) is kept; entries after the last closing ``</item>`` or
``</entry>`` tag are then incomplete (their link, date, even title, cut short) and are left
out as ``truncated``. Single entries are left out (``ParsedFeed.rejected``) and the rest of
the feed kept for:

``no_title``
    No title, or one that is empty once markup and whitespace are removed.
``future_date``
    Published after ``now + max_future`` (a wrong clock or a wrong zone at the source).
``duplicate_guid``
    The guid of an entry already kept from this feed (the first kept one wins).
``truncated``
    See above.

Text and dates
--------------
* Titles and summaries are plain text: CDATA unwrapped (also a CDATA section escaped into
  the text), script/style blocks, comments and tags removed, entities unescaped (markup
  that was escaped twice is removed after unescaping), control and zero-width characters
  dropped, whitespace collapsed. feedparser's HTML sanitiser is switched off (it builds
  safe HTML, which is then thrown away: it cost a third of the parse time).
* ``published`` is the entry's ``published`` (RSS ``pubDate``, Atom ``published``), else
  its ``updated`` (Atom ``updated``, ``dc:date``). The raw string is parsed first so the
  source's own offset is kept (``Thu, 3 Apr 2025 22:41:45 +0530`` stays at +05:30): RFC
  822 by :func:`email.utils.parsedate_to_datetime` (day numbers with or without the leading
  zero; ``IST`` read as +05:30, since Indian feeds use it and feedparser would take it as
  UTC), else ISO 8601 by :meth:`datetime.fromisoformat`. Failing both, feedparser's parsed
  struct is used: it is UTC (feedparser converts and drops the offset), so the instant is
  right but the offset is +00:00; a string with no zone at all counts as UTC there. An RFC
  822 string with a numeric offset that is out of range (``+9999``) gives None rather than
  feedparser's guess. No parseable date: None.
* ``link`` is kept only if it is an absolute ``http``/``https`` URL (else None).
"""

from __future__ import annotations

import codecs
import html
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser
from feedparser.exceptions import CharacterEncodingOverride, CharacterEncodingUnknown

from shared.domain.news.items import FeedItem, FeedRejected, ItemRejection, ParsedFeed

__all__ = ["FEED_REASON_CODES", "ITEM_REASON_CODES", "clean_text", "parse_feed"]

log = logging.getLogger(__name__)

FEED_REASON_CODES: frozenset[str] = frozenset(
    {"too_large", "empty", "not_a_feed", "encoding", "malformed"})
"""The ``reason_code`` values :func:`parse_feed` raises :class:`FeedRejected` with."""

ITEM_REASON_CODES: frozenset[str] = frozenset(
    {"no_title", "future_date", "duplicate_guid", "truncated"})
"""The ``reason_code`` values of the :class:`ItemRejection` entries of a parsed feed."""

# How much of the body is looked at to sniff HTML and encodings.
_SNIFF_BYTES = 2048
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
# Prolog: whitespace, an XML declaration, processing instructions, comments, a doctype.
# No two quantifiers here can match the same text (``(?:\s+)*`` backtracks exponentially
# on a run of blanks that ends in something else).
_PROLOG = rb"(?:\s|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[[^\]]*\][^>]*)?>)*"
_HTML_ROOT = re.compile(_PROLOG + rb"(?:<!DOCTYPE\s+html|<html[\s>])", re.I | re.S)
_FEED_ROOT = re.compile(_PROLOG + rb"<(?:[\w.-]+:)?(?:rss|feed|rdf|channel)[\s>/]",
                        re.I | re.S)
_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_BLANKS = re.compile(rb"\s*")
_CLOSE_ENTRY = re.compile(r"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.I)

_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|$)", re.S)
_BLOCK = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<![A-Za-z][^<>]*>|<\?[^<>]*\?>")
# C0/C1 controls (whitespace aside: split() handles it), zero-width and bidi-control
# characters (spoofing), BOM.
_JUNK = dict.fromkeys(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
     *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2060, 0xFEFF])
_HTTP_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?", re.I)
_IST = re.compile(r"\s(?:IST|I\.S\.T\.)\s*$", re.I)
_NUMERIC_OFFSET = re.compile(r"\s[+-]\d{4}\s*$")
_ISO_START = re.compile(r"\s*\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class _Sniffed:
    """What the first bytes of a body say about it."""

    html: bool
    feed_root: bool
    bom: str | None  # the encoding of a byte-order mark
    declared: str | None  # the encoding of the XML declaration (lower case)

    @property
    def self_declared(self) -> str | None:
        return self.bom or self.declared


def parse_feed(body: bytes, *, source: str, now: datetime, content_type: str | None = None,
               max_bytes: int = 5_000_000,
               max_future: timedelta = timedelta(hours=2)) -> ParsedFeed:
    """Parse a fetched feed body into items, leaving out the unusable entries.

    Parameters
    ----------
    body
        The response body, undecoded.
    source
        The configured feed's name; copied to every item and rejection.
    now
        The current time (timezone-aware): entries published after ``now + max_future``
        are left out.
    content_type
        The response's ``Content-Type``, if known: ``text/html`` marks an HTML page unless
        the body has a feed root; its ``charset`` is used only when the body declares no
        encoding of its own (no BOM, no ``encoding=`` in the XML declaration). A BOM
        beats the XML declaration.
    max_bytes
        Larger bodies are rejected unparsed.
    max_future
        How far past ``now`` a publication time may lie (source clocks drift a little).

    Returns
    -------
    ParsedFeed
        The usable entries in feed order, and the entries left out with their reasons.

    Raises
    ------
    FeedRejected
        The whole feed is unusable; ``reason_code`` is one of :data:`FEED_REASON_CODES`
        (see the module docstring).
    ValueError
        ``now`` is naive (a programming error, not a feed problem).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("parse_feed: now must be timezone-aware")
    if len(body) > max_bytes:
        raise FeedRejected("too_large", f"body is {len(body)} bytes, over the limit of "
                                        f"{max_bytes}")
    if not body.strip():
        raise FeedRejected("empty", "the body is empty")

    sniffed = _sniff(body)
    mime, charset = _parse_content_type(content_type)
    if sniffed.html or (mime in ("text/html", "application/xhtml+xml") and not sniffed.feed_root):
        raise FeedRejected("not_a_feed", "an HTML page, not a feed"
                           + (f" (served as {mime})" if mime else ""))

    # feedparser prefers an XML declaration to a BOM; a BOM is what the bytes are.
    forced = sniffed.bom or (charset if sniffed.declared is None else None)
    headers = {"content-type": f"application/xml; charset={forced}"} if forced else None
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers,
                                  sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # noqa: BLE001 - hostile input must never escape as a crash
        log.warning("feedparser failed on feed %s: %r", source, exc)
        raise FeedRejected("malformed", f"the parser failed: {exc!r}") from exc

    entries: list[Any] = list(parsed.get("entries") or ())
    bozo = bool(parsed.get("bozo"))
    problem = parsed.get("bozo_exception")
    version = parsed.get("version") or ""

    if not entries:
        if bozo and (isinstance(problem, CharacterEncodingOverride | CharacterEncodingUnknown)
                     or not _decodes(body, sniffed.self_declared or charset or "utf-8")
                     or _wide_declaration_on_narrow_bytes(sniffed, body)):
            raise FeedRejected("encoding", "no entries, and the bytes are not valid in the "
                                           f"declared encoding: {problem!r}")
        if bozo:
            raise FeedRejected("malformed", f"not well-formed, no entries: {problem!r}")
        if not version:
            raise FeedRejected("not_a_feed", "no RSS, Atom or RDF feed found")
        return ParsedFeed(source=source, items=())
    if not version:
        raise FeedRejected("not_a_feed", "entries found, but no RSS, Atom or RDF feed root")

    items: list[FeedItem] = []
    rejected: list[ItemRejection] = []
    complete = len(entries)
    if bozo:
        complete = min(complete, _closed_entries(body, parsed.get("encoding")))
        log.info("feed %s is not well-formed (%r); %d of %d entries complete", source,
                 problem, complete, len(entries))
    limit = now + max_future
    seen_guids: set[str] = set()
    for index, entry in enumerate(entries):
        guid = _text_or_none(_get(entry, "id"))
        title = clean_text(_get(entry, "title"))
        if index >= complete:
            rejected.append(ItemRejection(source, guid, title, "truncated",
                                          "the feed ends inside this entry"))
            continue
        if not title:
            rejected.append(ItemRejection(source, guid, title, "no_title",
                                          "the entry has no title"))
            continue
        published = _published(entry)
        if published is not None and published > limit:
            rejected.append(ItemRejection(
                source, guid, title, "future_date",
                f"published {published.isoformat()}, after now + {max_future} "
                f"({limit.isoformat()})"))
            continue
        if guid is not None:
            if guid in seen_guids:
                rejected.append(ItemRejection(source, guid, title, "duplicate_guid",
                                              f"guid {guid!r} appears earlier in the feed"))
                continue
            seen_guids.add(guid)
        items.append(FeedItem(source=source, guid=guid, title=title, link=_link(entry),
                              published=published, summary=clean_text(_get(entry, "summary"))))
    return ParsedFeed(source=source, items=tuple(items), rejected=tuple(rejected))


def clean_text(value: object) -> str:
    """Plain text from a feed's title or description (see the module docstring).

    Parameters
    ----------
    value
        What feedparser gave (a string, or None/anything else: empty result).

    Returns
    -------
    str
        Plain text, whitespace collapsed; ``""`` when nothing is left.
    """
    if not isinstance(value, str) or not value:
        return ""
    text = value.translate(_JUNK)
    if "<" in text:
        text = _strip_markup(text)
    if "&" in text:
        text = html.unescape(text).translate(_JUNK)
        if "<" in text:  # markup escaped twice (``&lt;b&gt;``) is still markup
            text = _strip_markup(text)
    return " ".join(text.split())


def _strip_markup(text: str) -> str:
    """Unwrap CDATA, drop script/style blocks, comments and tags (each becomes a space)."""
    text = _CDATA.sub(r" \1 ", text)
    text = _BLOCK.sub(" ", text)
    text = _COMMENT.sub(" ", text)
    for _ in range(3):  # nested junk (``<b<i>>``) leaves a tag behind after one pass
        stripped = _TAG.sub(" ", text)
        if stripped == text:
            return text
        text = stripped
    if _TAG.search(text):  # deliberately nested deeper: drop the brackets, not the text
        text = text.replace("<", " ").replace(">", " ")
    return text


def _get(entry: Any, key: str) -> Any:
    """A key of a feedparser entry, read as a plain dict (FeedParserDict's own lookup, with
    its key aliases, costs a fifth of the time spent outside feedparser)."""
    return dict.get(entry, key) if isinstance(entry, dict) else None


def _text_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.translate(_JUNK).split())
    return value or None


def _link(entry: Any) -> str | None:
    link = _get(entry, "link")
    if not isinstance(link, str):
        return None
    link = link.strip()
    return link if _HTTP_URL.fullmatch(link) else None


def _published(entry: Any) -> datetime | None:
    """The entry's publication time, aware; the source's offset kept when possible."""
    if _get(entry, "published") or _get(entry, "published_parsed"):
        raw, struct = _get(entry, "published"), _get(entry, "published_parsed")
    else:
        raw, struct = _get(entry, "updated"), _get(entry, "updated_parsed")
    if isinstance(raw, str) and raw.strip():
        text = _IST.sub(" +0530", raw.strip())
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
            if _NUMERIC_OFFSET.search(text):
                return None  # RFC 822 with an impossible offset or field: don't guess
        if when is not None and when.tzinfo is not None:
            return when
        if _ISO_START.match(text):
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                when = None
            if when is not None and when.tzinfo is not None:
                return when
    if struct is None:
        return None
    try:
        return datetime(struct[0], struct[1], struct[2], struct[3], struct[4],
                        min(struct[5], 59), tzinfo=UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _sniff(body: bytes) -> _Sniffed:
    head = body[:_SNIFF_BYTES]
    if head[:1].isspace():  # leading blank lines (seen in the wild) do not hide the root
        start = _BLANKS.match(body).end()
        head = body[start:start + _SNIFF_BYTES]
    bom = next((enc for mark, enc in _BOMS if head.startswith(mark)), None)
    if bom is not None:
        head = head[_bom_len(bom):]
        if not bom.startswith("utf-8"):
            head = head.decode(bom, "ignore").encode("utf-8", "ignore")
    m = _XML_ENCODING.match(head)
    declared = m.group(1).decode("ascii").lower() if m else None
    return _Sniffed(html=bool(_HTML_ROOT.match(head)), feed_root=bool(_FEED_ROOT.match(head)),
                    bom=bom, declared=declared)


def _wide_declaration_on_narrow_bytes(sniffed: _Sniffed, body: bytes) -> bool:
    """The XML declaration names UTF-16/32, yet it was itself written in single bytes."""
    if sniffed.bom or not sniffed.declared or not body.lstrip().startswith(b"<?xml"):
        return False
    try:
        name = codecs.lookup(sniffed.declared).name
    except LookupError:
        return False
    return name.startswith(("utf-16", "utf-32"))


def _bom_len(encoding: str) -> int:
    return {"utf-8": 3, "utf-16-be": 2, "utf-16-le": 2}.get(encoding, 4)


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    """``(mime type, charset)`` of a Content-Type header; the charset only if Python knows it."""
    if not content_type:
        return "", None
    mime, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower() or None
    if charset is not None:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    return mime.strip().lower(), charset


def _closed_entries(body: bytes, encoding: object) -> int:
    """How many ``</item>``/``</entry>`` tags the body has, read in the encoding feedparser
    settled on (UTF-16 bodies have no ASCII tags)."""
    try:
        text = body.decode(encoding if isinstance(encoding, str) and encoding else "utf-8",
                           "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    return len(_CLOSE_ENTRY.findall(text))


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True

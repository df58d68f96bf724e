"""news_ingest dedup: URL normalisation, title SimHash, item keys and the story index."""

from __future__ import annotations

import hashlib
import itertools
import random
import statistics
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.news.dedup import (
    MAX_TITLE_DISTANCE,
    Story,
    StoryIndex,
    hamming,
    item_key,
    normalize_url,
    title_fingerprint,
    title_tokens,
)
from shared.domain.news.items import FeedItem

HERE = Path(__file__).resolve()
KIT_FEED = (HERE.parents[2].parent / "shared" / "fixtures" / "rss_feeds"
            / "thehindu_business_economy_rss_2025-04-03_media-mosaic.xml")
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None)


def item(title: str, *, source: str = "s", link: str | None = None,
         guid: str | None = None) -> FeedItem:
    return FeedItem(source=source, guid=guid, title=title, link=link, published=None)


# ---------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.thehindu.com/business/Economy/article69408842.ece",
     "https://thehindu.com/business/Economy/article69408842.ece"),
    ("HTTP://WWW.TheHindu.COM/business/Economy/Article.ece", "https://thehindu.com/business/Economy/Article.ece"),
    ("https://example.com/a/b/", "https://example.com/a/b"),
    ("https://example.com/", "https://example.com"),
    ("https://example.com", "https://example.com"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("http://example.com:443/a", "https://example.com/a"),
    ("https://example.com:80/a", "https://example.com:80/a"),
    ("https://example.com./a", "https://example.com/a"),
    ("https://user:pw@example.com/a", "https://example.com/a"),
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://example.com/a?utm_source=rss&utm_medium=feed&UTM_Campaign=x",
     "https://example.com/a"),
    ("https://example.com/a?fbclid=1&gclid=2&ref=home&cmpid=3&from=mdr&amp=1",
     "https://example.com/a"),
    ("https://example.com/a?b=2&a=1&utm_source=x", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a?id=7&id=3", "https://example.com/a?id=3&id=7"),
    ("https://example.com/a?q=a+b", "https://example.com/a?q=a+b"),
    ("https://example.com/a?q=a%20b", "https://example.com/a?q=a+b"),
    ("https://example.com/a?flag", "https://example.com/a?flag="),
    ("  https://example.com/a  ", "https://example.com/a"),
    ("https://www.com/a", "https://www.com/a"),  # the host is www.com, not com
    ("https://[2001:db8::1]:8080/a/", "https://[2001:db8::1]:8080/a"),
    ("not a url", "not a url"),
    ("/relative/path", "/relative/path"),
    ("https://example.com:99999/a", "https://example.com:99999/a"),  # bad port: untouched
])
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected
    assert normalize_url(expected) == expected


def test_tracking_variants_of_one_article_normalise_alike() -> None:
    variants = [
        "https://www.thehindu.com/business/Economy/rbi-policy/article1.ece",
        "http://thehindu.com/business/Economy/rbi-policy/article1.ece/",
        "https://www.thehindu.com/business/Economy/rbi-policy/article1.ece?utm_source=rss"
        "&utm_medium=Economy#top",
        "https://WWW.THEHINDU.COM:443/business/Economy/rbi-policy/article1.ece?homepage=true",
    ]
    assert len({normalize_url(u) for u in variants}) == 1


URLS = st.builds(
    lambda scheme, www, host, port, path, query, frag: (
        f"{scheme}://{www}{host}{port}{path}{query}{frag}"),
    st.sampled_from(["http", "https", "HTTPS"]), st.sampled_from(["", "www.", "WWW."]),
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,10}\.(com|in|co\.in)", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.from_regex(r"(/[A-Za-z0-9._~%-]{0,8}){0,4}/?", fullmatch=True),
    st.one_of(st.just(""), st.lists(
        st.tuples(st.sampled_from(["id", "utm_source", "page", "fbclid", "q", "Ref"]),
                  st.from_regex(r"[a-z0-9 +%]{0,5}", fullmatch=True)), max_size=4).map(
        lambda kv: "?" + "&".join(f"{k}={v}" for k, v in kv))),
    st.sampled_from(["", "#x", "#"]),
)


@PROPERTY
@given(url=URLS)
def test_normalize_url_is_idempotent_and_clean(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once
    assert once.startswith("https://")
    assert "#" not in once and "utm_" not in once.lower() and "fbclid" not in once
    assert "://www." not in once
    assert not once.endswith("/")


# ---------------------------------------------------------------------------- titles


THREE_OUTLETS = [
    ("thehindu", "https://www.thehindu.com/business/Economy/rbi-policy/article1.ece",
     "RBI keeps repo rate unchanged at 6.5%"),
    ("livemint", "https://www.livemint.com/economy/rbi-monetary-policy-11712345.html",
     "RBI keeps repo rate unchanged at 6.5 per cent"),
    ("economictimes", "https://economictimes.indiatimes.com/news/economy/policy/rbi/"
     "articleshow/1.cms?from=mdr", "RBI holds repo rate unchanged at 6.5%"),
]


def test_fingerprints_are_pinned_across_processes() -> None:
    # BLAKE2b, not hash(): the same value in every process, on every machine
    assert title_fingerprint("RBI keeps repo rate unchanged at 6.5%") == 0xC4C62B5995443ABA
    token = hashlib.blake2b(b"rbi", digest_size=8).digest()
    assert title_fingerprint("RBI") == int.from_bytes(token, "little")


def test_identical_titles_are_at_distance_zero() -> None:
    a = title_fingerprint("Sensex, Nifty end higher on IT gains")
    assert hamming(a, title_fingerprint("Sensex, Nifty end higher on IT gains")) == 0
    assert hamming(a, title_fingerprint("  SENSEX,  nifty end higher on IT gains!  ")) == 0
    assert 0 <= a < 1 << 64


def test_light_rewording_normalises_to_the_same_tokens() -> None:
    tokens = {title_tokens(title) for _, _, title in THREE_OUTLETS}
    assert tokens == {("6.5", "hold", "percent", "rate", "rbi", "repo", "unchanged")}
    assert title_tokens("U.S. tariffs: India's exports hit") == title_tokens(
        "US tariffs India exports hit")
    assert title_tokens("Rs 1,000 crore") == title_tokens("\u20b91000 cr")
    assert title_tokens("cut by 25 basis points") == title_tokens("cuts 25 bps")
    assert title_tokens("at 6.50%") == title_tokens("at 6.5 pct")


@pytest.mark.parametrize(("a", "b"), [
    ("RBI keeps repo rate unchanged at 6.5%", "RBI cuts repo rate by 25 bps to 6.25%"),
    ("RBI keeps repo rate unchanged at 6.5%", "RBI hikes repo rate by 25 bps to 6.75%"),
    ("RBI cuts repo rate by 25 bps to 6.25%", "RBI cuts repo rate by 50 bps to 6%"),
    ("Sensex rises 500 points", "Sensex falls 500 points"),
    ("RBI to cut rates in April", "RBI not to cut rates in April"),
    ("Nifty ends flat", "Crude oil jumps 3% on Middle East tensions"),
])
def test_different_events_stay_apart(a: str, b: str) -> None:
    assert hamming(title_fingerprint(a), title_fingerprint(b)) > MAX_TITLE_DISTANCE


def test_degenerate_titles_still_fingerprint() -> None:
    assert title_tokens("The") == ("the",)  # only stopwords: keep them
    assert title_tokens("!!!") == ("!!!",)  # no words: the title itself
    assert title_fingerprint("") == 0
    assert title_fingerprint("The") != title_fingerprint("A")


@PROPERTY
@given(words=st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8),
                      min_size=1, max_size=12), seed=st.integers(0, 2**32 - 1))
def test_fingerprint_ignores_order_case_and_punctuation(words: list[str], seed: int) -> None:
    shuffled = words[:]
    random.Random(seed).shuffle(shuffled)
    noisy = ", ".join(w.upper() if i % 2 else w for i, w in enumerate(shuffled)) + "!"
    assert title_fingerprint(" ".join(words)) == title_fingerprint(noisy)


@pytest.mark.skipif(not KIT_FEED.is_file(), reason="the kit's RSS fixture is absent")
def test_real_headlines_do_not_collide() -> None:
    import xml.etree.ElementTree as ET

    titles = [i.findtext("title") for i in
              ET.fromstring(KIT_FEED.read_bytes()).findall("./channel/item")]
    fingerprints = [title_fingerprint(t) for t in titles]
    closest = min(hamming(a, b) for a, b in itertools.combinations(fingerprints, 2))
    assert closest > MAX_TITLE_DISTANCE + 6  # 13 here: 100 distinct stories, far apart


# ---------------------------------------------------------------------------- item keys


def test_item_key_prefers_the_normalised_link() -> None:
    a = item("x", source="feed-a", link="https://www.example.com/a/?utm_source=rss",
             guid="1")
    b = item("y", source="feed-b", link="http://example.com/a", guid="2")
    assert item_key(a) == item_key(b)
    assert len(item_key(a)) == 64 and int(item_key(a), 16) >= 0
    expected = hashlib.sha256(b"url\x1fhttps://example.com/a").hexdigest()
    assert item_key(a) == expected


def test_item_key_falls_back_to_guid_then_title() -> None:
    by_guid = item("t", source="a", guid="g")
    assert item_key(by_guid) == item_key(item("other title", source="a", guid="g"))
    assert item_key(by_guid) != item_key(item("t", source="b", guid="g"))
    by_title = item("RBI: repo  rate!", source="a")
    assert item_key(by_title) == item_key(item("rbi repo rate", source="a"))
    assert item_key(by_title) != item_key(item("rbi repo rate", source="b"))
    assert len({item_key(by_guid), item_key(by_title),
                item_key(item("t", source="a", link="https://example.com/t"))}) == 3


# ---------------------------------------------------------------------------- stories


def test_three_outlets_one_story() -> None:
    index = StoryIndex()
    results = [index.assign(item(title, source=source, link=link, guid=f"{source}-1"))
               for source, link, title in THREE_OUTLETS]
    first_key = item_key(item(THREE_OUTLETS[0][2], source="thehindu",
                              link=THREE_OUTLETS[0][1]))
    assert results == [(first_key, True), (first_key, False), (first_key, False)]
    (story,) = index.stories()
    assert isinstance(story, Story)
    assert story.story_id == first_key
    assert story.sources == ("thehindu", "livemint", "economictimes")
    assert len(story.urls) == 3 and len(story.item_keys) == 3
    assert story.fingerprint == title_fingerprint(THREE_OUTLETS[0][2])
    assert not story.known


def test_unrelated_stories_stay_apart() -> None:
    index = StoryIndex()
    titles = ["RBI keeps repo rate unchanged at 6.5%", "RBI cuts repo rate by 25 bps to 6.25%",
              "Sensex rises 500 points", "Sensex falls 500 points",
              "Government drops import duty on EV, phone battery components",
              "Industrial output grows at 8-month high of 5%"]
    ids = [index.assign(item(t, link=f"https://example.com/{i}"))
           for i, t in enumerate(titles)]
    assert all(new for _, new in ids)
    assert len({sid for sid, _ in ids}) == len(index) == len(titles)
    assert all(s.sources == ("s",) for s in index.stories())


def test_same_url_is_the_same_story_whatever_the_title() -> None:
    index = StoryIndex()
    sid, new = index.assign(item("First headline", source="a",
                                 link="https://example.com/x?utm_source=a"))
    assert new
    # the outlet rewrote the headline; the article is the same
    assert index.assign(item("Completely new wording", source="b",
                             link="https://www.example.com/x/")) == (sid, False)
    assert index.story(sid).sources == ("a", "b")


def test_the_same_item_twice_counts_once() -> None:
    index = StoryIndex()
    it = item("Headline", source="a", link="https://example.com/x")
    sid, _ = index.assign(it)
    assert index.assign(it) == (sid, False)
    assert index.story(sid).item_keys == (item_key(it),)
    assert index.story(sid).sources == ("a",)


def test_items_without_links_join_by_guid_key_or_title() -> None:
    index = StoryIndex()
    sid, _ = index.assign(item("Budget 2025: tax slabs revised", source="a", guid="g1"))
    # same feed and guid, headline edited beyond recognition: the same item
    assert index.assign(item("Finance Minister revises slabs", source="a", guid="g1")) == (
        sid, False)
    assert index.assign(item("Budget 2025 tax slabs revised", source="b")) == (sid, False)


def test_known_stories_from_an_earlier_poll_are_matched() -> None:
    earlier = StoryIndex()
    sid, _ = earlier.assign(item(*THREE_OUTLETS[0][2:], source="thehindu",
                                 link=THREE_OUTLETS[0][1]))
    story = earlier.story(sid)
    # as stored: fingerprint as a signed bigint, the URLs normalised
    stored_fp = story.fingerprint - (1 << 64) if story.fingerprint >= 1 << 63 else \
        story.fingerprint
    index = StoryIndex([(sid, stored_fp, story.urls),
                        ("other", title_fingerprint("Gold hits record high"), [])])
    assert sid in index and len(index) == 2
    assert index.story(sid).known and index.story(sid).sources == ()
    # the same URL again (tracking parameters differ) and a reworded title elsewhere
    assert index.assign(item("RBI policy: rates on hold", source="thehindu",
                             link=THREE_OUTLETS[0][1] + "?utm_source=rss")) == (sid, False)
    assert index.assign(item(THREE_OUTLETS[2][2], source="economictimes",
                             link=THREE_OUTLETS[2][1])) == (sid, False)
    new_id, new = index.assign(item("Rupee falls to record low", source="livemint",
                                    link="https://www.livemint.com/rupee"))
    assert new and new_id not in (sid, "other")
    assert [s.story_id for s in index.stories()] == [sid, "other", new_id]
    assert [s.story_id for s in index.stories(include_known=False)] == [sid, new_id]
    assert index.story(sid).sources == ("thehindu", "economictimes")


def test_known_story_ids_must_be_unique() -> None:
    with pytest.raises(ValueError, match="twice"):
        StoryIndex([("a", 1, []), ("a", 2, [])])


def test_story_ids_are_deterministic() -> None:
    rng = random.Random(3)
    items = [item(f"Headline {rng.randrange(30)} about markets", source=f"src{i % 3}",
                  link=f"https://example.com/{rng.randrange(60)}") for i in range(200)]

    def run() -> list[tuple[str, bool]]:
        index = StoryIndex()
        return [index.assign(it) for it in items]

    first = run()
    assert run() == first
    for (sid, new), it in zip(first, items, strict=True):
        if new:
            assert sid == item_key(it)


@PROPERTY
@given(title=st.lists(st.sampled_from(["rbi", "repo", "nifty", "crude", "rupee", "gdp",
                                       "budget", "tax", "bank", "fed", "yields", "gold"]),
                      min_size=1, max_size=8).map(" ".join),
       bits=st.sets(st.integers(0, 63), max_size=6))
def test_bands_find_every_fingerprint_within_the_threshold(title: str, bits: set[int]) -> None:
    flip = sum(1 << b for b in bits)
    stored = title_fingerprint(title) ^ flip
    index = StoryIndex([("stored", stored, [])])
    sid, new = index.assign(item(title, link="https://example.com/new"))
    if len(bits) <= MAX_TITLE_DISTANCE:
        assert (sid, new) == ("stored", False)
    else:
        assert new and sid != "stored"


def test_the_nearest_story_wins_then_the_oldest() -> None:
    fp = title_fingerprint("Nifty hits record high")
    index = StoryIndex([("far", fp ^ 0b111, []), ("near", fp ^ 0b1, []),
                        ("near-later", fp ^ 0b10, [])])
    assert index.assign(item("Nifty hits record high")) == ("near", False)


def test_a_thousand_items_assign_fast() -> None:
    rng = random.Random(11)
    words = ("rbi", "repo", "rate", "inflation", "nifty", "sensex", "bank", "crude", "oil",
             "rupee", "budget", "tax", "gdp", "growth", "fed", "tariff", "trade", "exports",
             "gold", "it", "earnings", "profit", "policy", "bonds", "yields", "market")
    items = [item(" ".join(rng.choice(words) for _ in range(rng.randint(6, 12))) + f" {i}",
                  source=f"src{i % 5}", link=f"https://www.example{i % 5}.com/n/{i}/?utm_x=1")
             for i in range(1000)]
    known = [(f"k{i}", rng.getrandbits(64), [f"https://old.example.com/{i}"])
             for i in range(2000)]
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        index = StoryIndex(known)
        for it in items:
            index.assign(it)
        timings.append(time.perf_counter() - start)
    assert len(index) >= 2000 + 900
    # ~35 ms here; catch regressions (a linear scan over stories), not machine noise
    assert statistics.median(timings) < 0.5

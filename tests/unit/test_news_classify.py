"""News classification (issue #7): event type, symbols, sectors, sentiment and impact from
the versioned rule set ``shared/data/news_rules.yaml``; every output explains itself.

Headlines are real ones from the kit's Hindu business/economy feed (quoted below, and the
whole feed when ``../shared/fixtures`` is beside the checkout) plus typical market ones."""

from __future__ import annotations

import copy
import functools
import xml.etree.ElementTree as ET
from importlib import resources

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import shared.domain.news.classify as classify_module
from shared.domain.news.classify import (
    RuleSet,
    RuleSetError,
    classify,
    default_ruleset,
    tokenize,
)
from shared.domain.news.items import EVENT_TYPES, Classification
from tests.conftest import KIT_FIXTURES

FEED = KIT_FIXTURES / "rss_feeds" / "thehindu_business_economy_rss_2025-04-03_media-mosaic.xml"
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
INDICES = {"NIFTY", "BANKNIFTY"}


@functools.cache
def rule_text() -> str:
    return (resources.files("shared") / "data" / "news_rules.yaml").read_text(encoding="utf-8")


def rule_data() -> dict:
    """A fresh copy of the packaged rule file's data."""
    return yaml.load(rule_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def why_text(c: Classification) -> str:
    return "\n".join(c.why)


def valid(c: Classification) -> None:
    assert c.event_type in EVENT_TYPES
    assert 0.0 <= c.impact <= 1.0
    assert -1.0 <= c.sentiment <= 1.0
    assert set(c.symbols) <= INDICES and list(c.symbols) == sorted(set(c.symbols))
    assert list(c.sectors) == sorted(set(c.sectors))
    assert c.why and all(isinstance(w, str) and w for w in c.why)
    assert c.why[0].startswith(f"event_type {c.event_type}")
    assert c.ruleset == default_ruleset().version


# --------------------------------------------------------------------------- event type

HEADLINES = {
    "monetary_policy": [
        "RBI unexpectedly cuts repo rate by 50 basis points in emergency meeting",
        "RBI to buy ₹80,000 crore in G-Secs citing “evolving liquidity conditions”",  # kit
        "Monetary Policy Committee votes 5-1 for a 25 bps rate cut",
        "RBI keeps repo rate unchanged at 6.5%, MPC retains neutral stance",
    ],
    "fiscal_budget": [
        "Union Budget 2026: fiscal deficit target set at 4.4% of GDP",
        "Finance Minister Nirmala Sitharaman to present Union Budget on February 1",
        "GST collections rise 9.1% to ₹1.84 lakh crore in February",  # kit
        "Government drops import duty on EV, phone battery components",  # kit
    ],
    "inflation_data": [
        "Retail inflation at 7-month low of 3.6%, thanks to slowing food prices",  # kit
        "Wholesale inflation climbs up to 2.38% as manufacturing products become dearer",  # kit
        "CPI inflation eases to 3.2% in October on lower food prices",
    ],
    "global_macro": [
        "Manufacturing PMI climbs to eight month high of 58.1 in March",  # kit
        "ECB to cut rates again as debate heats up on pause",  # kit
        "Fitch cuts global GDP growth forecast to 2.3% on U.S. trade war",  # kit
        "US Federal Reserve holds rates steady; FOMC signals two cuts",
    ],
    "earnings": [
        "Infosys Q2 results: net profit rises 5%, beats estimates",
        "TCS Q3 net profit falls 2%, misses estimates",
        "HDFC Bank quarterly results: asset quality improves, net profit up 18%",
    ],
    "regulatory": [
        "SEBI eases mandatory investment norms for AMC employees",  # kit
        "SEBI circular tightens F&O rules, raises lot size for index derivatives",
        "NSE circular: weekly expiry for Bank Nifty discontinued",
    ],
    "geopolitical": [
        "Examining implications of U.S. reciprocal tariffs on India: Commerce Ministry",  # kit
        "Is India firmly positioned to manage U.S. sanctions on Russian oil?",  # kit
        "India-Pakistan border tensions escalate after missile strikes",
    ],
    "corporate_action": [
        "Reliance Industries board approves 1:1 bonus issue",
        "ITC declares interim dividend of Rs 6.5 per share; record date fixed",
        "Wipro announces ₹12,000 crore buyback",
        "HDFC Bank board approves stock split",
    ],
    "other": [
        "Do you have decent work?",  # kit
        "Centring care in India’s economic policy",  # kit
        "",
    ],
}
CASES = [(t, h) for t, hs in HEADLINES.items() for h in hs]


def test_every_event_type_has_headlines():
    assert set(HEADLINES) == set(EVENT_TYPES)


@pytest.mark.parametrize(("event_type", "title"), CASES, ids=[h[:40] for _, h in CASES])
def test_event_type_of_realistic_headlines(event_type, title):
    c = classify(title)
    valid(c)
    assert c.event_type == event_type, c.why


def test_the_winning_type_and_its_terms_are_in_why():
    c = classify("RBI unexpectedly cuts repo rate by 50 basis points in emergency meeting")
    assert c.why[0].startswith("event_type monetary_policy: score ")
    assert "'repo rate' title 3x2" in c.why[0] and "'basis points' title 2x2" in c.why[0]
    d = classify("ITC declares interim dividend of Rs 6.5 per share; record date fixed")
    assert "'interim dividend'" in d.why[0] and "'record date'" in d.why[0]
    assert classify("Do you have decent work?").why[0] == "event_type other: no event rule fired"


def test_title_terms_weigh_more_than_summary_terms():
    # the same two terms: whichever is in the title wins
    a = classify("SEBI tweaks disclosure rules", "Separately, tariff talks continue")
    b = classify("Tariff talks continue", "Separately, SEBI tweaks disclosure rules")
    assert a.event_type == "regulatory" and b.event_type == "geopolitical"
    assert "'SEBI' title 3x2" in a.why[0] and "'SEBI' summary 3x1" in "\n".join(b.why)


def test_a_summary_can_decide_when_the_title_is_vague():
    c = classify("What it means for you",
                 "The Monetary Policy Committee cut the repo rate by 25 basis points.")
    assert c.event_type == "monetary_policy"
    assert "'repo rate' summary 3x1" in c.why[0]


def test_ties_are_broken_by_the_fixed_priority():
    # one weight-2 term each: geopolitical ('tariffs') and regulatory ('regulator')
    c = classify("Regulator reviews tariffs")
    assert c.event_type == "geopolitical"
    assert "tie with regulatory broken by priority" in c.why[0]
    assert any(w.startswith("also regulatory: score 4") for w in c.why)


def test_longest_term_wins_within_a_category_and_ignore_phrases_hide_terms():
    c = classify("Infosys net profit rises")
    assert "'net profit'" in c.why[0] and "'profit'" not in c.why[0]
    assert classify("Telecom price war intensifies").event_type == "other"  # not a war
    assert classify("Circular economy conference in Jaipur").event_type == "other"


# --------------------------------------------------------------------------- symbols, sectors


def test_a_bank_maps_to_banknifty_and_nifty():
    c = classify("HDFC Bank Q3 net profit rises 18%, beats estimates")
    assert c.symbols == ("BANKNIFTY", "NIFTY") and c.sectors == ("banks",)
    assert "'HDFC Bank' -> HDFC Bank [BANKNIFTY, NIFTY]" in why_text(c)


def test_a_non_bank_heavyweight_maps_to_nifty_only():
    c = classify("Infosys wins $1.5 billion deal from European client")
    assert c.symbols == ("NIFTY",) and c.sectors == ("it",)
    assert "'Infosys' -> Infosys [NIFTY]" in why_text(c)


@pytest.mark.parametrize("title", [
    "RBI cuts repo rate by 25 bps",
    "RBI to buy ₹80,000 crore in G-Secs citing “evolving liquidity conditions”",
    "RBI hikes CRR to drain liquidity",
])
def test_rbi_rate_and_liquidity_news_names_both_indices(title):
    # documented choice: bank/RBI/rate news names BANKNIFTY and NIFTY - both traded indices,
    # so it is never narrower than market-wide - rather than leaving symbols empty
    c = classify(title)
    assert c.event_type == "monetary_policy"
    assert c.symbols == ("BANKNIFTY", "NIFTY") and "banks" in c.sectors
    assert "sector banks" in why_text(c)


@pytest.mark.parametrize("title", [
    "CPI inflation eases to 3.2% in October on lower food prices",
    "Union Budget 2026: fiscal deficit target set at 4.4% of GDP",
    "US Federal Reserve holds rates steady; FOMC signals two cuts",
    "Examining implications of U.S. reciprocal tariffs on India: Commerce Ministry",
])
def test_macro_news_naming_no_company_is_market_wide(title):
    c = classify(title)
    assert c.event_type in default_ruleset().market_wide_types
    assert c.symbols == ()
    assert any(w.startswith("symbols none (market-wide)") for w in c.why)


def test_a_sector_named_in_macro_news_does_not_narrow_it():
    c = classify("Donald Trump’s ‘liberation day’ tariffs: India’s agriculture, machinery, "
                 "pharma, electrical, chemical sectors may see impact, say experts")  # kit
    assert c.event_type == "geopolitical" and c.symbols == ()
    assert {"pharma", "infra", "agriculture"} <= set(c.sectors)
    assert "not applied (geopolitical is market-wide)" in why_text(c)


def test_a_company_named_in_macro_news_sets_its_symbols():
    c = classify("Trump tariff on imported cars: Jaguar Land Rover, auto parts units may "
                 "take a hit")  # kit
    assert c.event_type == "geopolitical"
    assert c.symbols == ("NIFTY",) and c.sectors == ("auto",)
    assert "'Jaguar Land Rover' -> Tata Motors [NIFTY]" in why_text(c)


def test_sector_keywords_set_symbols_outside_macro_news():
    c = classify("IT stocks slump after weak quarterly earnings")
    assert c.event_type == "earnings" and c.symbols == ("NIFTY",) and c.sectors == ("it",)
    assert "sector it 'IT stocks' -> [NIFTY]" in why_text(c)


@pytest.mark.parametrize("title", [
    "Axis Bank, Kotak Mahindra Bank fall after RBI curbs",
    "SBI raises ₹10,000 crore via infra bonds",
    "ICICI Bank shares surge 5% after Q4 results",
    "PSU banks rally on hopes of rate cut",
    "Non-performing assets of banks at multi-year low, profits up: Finance Minister",  # kit
])
def test_a_bank_never_yields_banknifty_alone(title):
    c = classify(title)
    assert c.symbols == ("BANKNIFTY", "NIFTY") and "banks" in c.sectors


def test_naming_an_index_names_it():
    assert classify("Bank Nifty hits record high").symbols == ("BANKNIFTY",)
    assert classify("Nifty ends flat ahead of expiry").symbols == ("NIFTY",)


def test_longest_name_wins_and_lookalikes_are_not_companies():
    assert classify("HDFC Life premium income rises").symbols == ("NIFTY",)  # not HDFC Bank
    assert classify("Tech Mahindra wins deal").sectors == ("it",)  # not Mahindra (auto)
    # an SBI research note is not news about the bank
    c = classify("Migration of labour from low-income states resulting in higher inflation "
                 "in Kerala, TN: SBI study")  # kit
    assert c.event_type == "inflation_data" and c.symbols == ()
    # case-sensitive terms: "IT" the sector, not "it"; "Reliance" the company, not reliance
    assert classify("It is time to invest, says PM").sectors == ()
    assert classify("Growing reliance on imports worries planners").symbols == ()
    assert classify("Reliance shares gain").symbols == ("NIFTY",)


# --------------------------------------------------------------------------- sentiment


@pytest.mark.parametrize(("good", "bad"), [
    ("RBI cuts repo rate by 25 bps", "RBI hikes repo rate by 25 bps"),
    ("Surprise rate cut lifts markets", "Surprise rate hike hits markets"),
    ("Infosys Q2 net profit beats estimates", "Infosys Q2 net profit misses estimates"),
    ("Markets rally on strong FII inflows", "Markets slump as FIIs sell"),
    ("Bank stocks surge", "Bank stocks plunge"),
    ("Government cuts import duty on gold", "Government hikes import duty on gold"),
    ("Industrial output grows at 8-month high of 5%",  # kit
     "Core sector output growth slowed to 4.6% in January"),  # kit
    ("Retail inflation at 7-month low of 3.6%, thanks to slowing food prices",  # kit
     "Wholesale inflation climbs up to 2.38% as manufacturing products become dearer"),  # kit
    ("Moody's upgrades India outlook", "Fitch cuts global GDP growth forecast"),
])
def test_sentiment_direction(good, bad):
    assert classify(good).sentiment > 0 > classify(bad).sentiment


def test_sentiment_formula_and_its_terms_are_recorded():
    c = classify("Nifty surges")  # 'surge' weight 2, title x2: pos 4 -> 4 / (4 + 0 + 1)
    assert c.sentiment == 0.8
    assert "sentiment +0.8000 = (pos 4 - neg 0) / (pos + neg + 1): +'surges' title 2x2" \
        in why_text(c)
    assert classify("Nothing to see here").sentiment == 0.0
    assert "sentiment 0: no lexicon term" in why_text(classify("Nothing to see here"))


def test_negation_within_two_tokens_flips():
    c = classify("Nifty does not surge despite the budget")
    assert c.sentiment < 0 and "negated by 'not'" in why_text(c)
    assert classify("No rate cut this year, says RBI").sentiment < 0
    assert classify("RBI unlikely to cut rates").sentiment < 0
    assert classify("Infosys fails to beat estimates").sentiment < 0
    # more than two content tokens away: no flip
    assert classify("Not everyone expected shares of the bank to surge").sentiment > 0


def test_inverse_subjects_invert_directional_terms_only():
    up = classify("Inflation climbs to 6%")
    assert up.sentiment < 0 and "inverted by 'inflation'" in why_text(up)
    assert classify("Trade deficit at a 42-month low").sentiment > 0
    # evaluative terms are never inverted
    assert classify("Inflation data: a crisis in the making").sentiment < 0


def test_context_pairs_are_recorded_and_take_their_trigger():
    c = classify("Government drops import duty on EV, phone battery components")  # kit
    assert c.sentiment > 0
    assert "+'drops'+'duty' (cut)" in why_text(c)
    assert "'drops' title" not in why_text(c).replace("+'drops'+'duty'", "")
    assert classify("Sensex drops 400 points").sentiment < 0  # unpaired: a fall


# --------------------------------------------------------------------------- impact


def test_impact_ordering():
    rbi = classify("RBI unexpectedly cuts repo rate by 50 basis points in emergency meeting")
    dividend = classify("ITC declares interim dividend of Rs 6.5 per share")
    assert rbi.event_type == "monetary_policy" and dividend.event_type == "corporate_action"
    assert rbi.impact > dividend.impact
    assert rbi.impact >= 0.8 and dividend.impact == 0.2
    # the same news: a surprise raises it
    plain = classify("RBI cuts repo rate by 25 basis points")
    assert rbi.impact > plain.impact >= 0.8
    # earnings of a NIFTY heavyweight weigh more than of another company
    assert (classify("Infosys Q2 net profit rises 5%").impact
            > classify("Mphasis Q2 net profit rises 5%").impact)


def test_impact_formula_is_recorded():
    c = classify("ITC declares interim dividend of Rs 6.5 per share")
    assert c.why[-1] == ("impact 0.2000 = 1 - (1 - b 0.2000) * (1 - i 0) * "
                         "(1 - 0.2 * |sentiment|); b: corporate_action base 0.2")
    r = classify("RBI unexpectedly cuts repo rate by 50 basis points in emergency meeting")
    assert "i: 'unexpectedly' 0.15, 'emergency' 0.2" in r.why[-1]
    # 1 - (1 - 0.8) * (1 - 0.35) * (1 - 0.2 * 2/3)
    assert r.impact == round(1 - 0.2 * 0.65 * (1 - 0.2 * 0.6667), 4)


def test_a_type_named_in_passing_has_a_lower_impact():
    strong = classify("U.S. slaps reciprocal tariffs on India")
    passing = classify("Exporters meet in Delhi", "Talks also touched on tariffs.")
    assert strong.event_type == passing.event_type == "geopolitical"
    assert strong.impact > passing.impact
    assert "scaled by evidence 2/6" in passing.why[-1]


def test_intensity_is_capped():
    c = classify("Emergency: market crash, unexpected surprise shock, unprecedented meltdown")
    assert "(capped at 0.4)" in c.why[-1]
    assert 0.0 <= c.impact <= 1.0


WORDS = ["RBI", "repo", "rate", "cut", "hike", "not", "no", "inflation", "surge", "plunge",
         "HDFC", "Bank", "Infosys", "tariff", "war", "SEBI", "circular", "dividend",
         "emergency", "crash", "record", "unexpected", "beats", "misses", "estimates",
         "budget", "Nifty", "IT", "it", "the", "of", "7-month", "low", "high", "banks",
         "'s", "’", "&", "L&T", "U.S.", "—", "₹", "3.5%", "", " "]


@PROPERTY
@given(st.lists(st.sampled_from(WORDS), max_size=30), st.lists(st.sampled_from(WORDS),
                                                               max_size=40))
def test_any_text_gets_a_valid_classification(title, summary):
    t, s = " ".join(title), " ".join(summary)
    c = classify(t, s)
    valid(c)
    assert classify(t, s) == c


# --------------------------------------------------------------------------- determinism,
# version, rule file


def test_same_input_same_output_and_an_independently_compiled_rule_set_agrees():
    fresh = RuleSet.from_mapping(rule_data())
    for _, title in CASES:
        a = classify(title, "Separately, the rupee fell and crude prices rose.")
        assert a == classify(title, "Separately, the rupee fell and crude prices rose.")
        assert a == classify(title, "Separately, the rupee fell and crude prices rose.",
                             rules=fresh)


def test_the_rule_set_version_is_recorded():
    version = rule_data()["version"]
    assert default_ruleset().version == version == classify_module.RULESET_VERSION
    assert classify("Anything at all").ruleset == version
    data = rule_data()
    data["version"] = "2099-01-01.7"
    assert classify("RBI cuts repo rate", rules=RuleSet.from_mapping(data)).ruleset == \
        "2099-01-01.7"
    assert default_ruleset() is default_ruleset()  # loaded once


def test_a_rule_set_can_be_changed_as_data():
    data = rule_data()
    data["events"]["geopolitical"][3].append("trade skirmish")
    data["base_impact"]["geopolitical"] = 0.9
    rules = RuleSet.from_mapping(data)
    c = classify("A trade skirmish looms", rules=rules)
    assert c.event_type == "geopolitical" and c.impact == 0.9
    assert classify("A trade skirmish looms").event_type == "other"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(version="v1"), "version"),
    (lambda d: d["sentiment"]["negators"].append(False), "quote YAML booleans"),
    (lambda d: d["events"].update(elections={3: ["poll"]}), "unknown key(s) elections"),
    (lambda d: d["priority"].pop(), "priority"),
    (lambda d: d["base_impact"].update(other=1.5), "base_impact.other"),
    (lambda d: d["entities"][0]["terms"].append("Infosys"), "already defined"),
    (lambda d: d["ignore"]["events"].append("repo rate"), "already defined"),
    (lambda d: d["entities"][0].update(sectors=["bankz"]), "unknown sector"),
    (lambda d: d["sectors"]["banks"].update(symbols=["bank nifty"]), "bad symbol"),
    (lambda d: d["events"]["earnings"][2].append("net profit"), "listed twice"),
    (lambda d: d["sentiment"]["contexts"]["cut"]["triggers"].append("hike"),
     "already triggers"),
    (lambda d: d.pop("min_score"), "missing key(s) min_score"),
])
def test_a_malformed_rule_set_is_refused_naming_the_entry(change, message):
    data = copy.deepcopy(rule_data())
    change(data)
    with pytest.raises(RuleSetError, match="news_rules.yaml") as err:
        RuleSet.from_mapping(data)
    assert message in str(err.value)


def test_unquoted_yaml_booleans_are_caught():
    text = rule_text()
    broken = text.replace('negators: [not, "no",', "negators: [not, no,")
    assert broken != text
    with pytest.raises(RuleSetError, match="sentiment.negators"):
        RuleSet.from_yaml(broken)
    with pytest.raises(RuleSetError, match="not valid YAML"):
        RuleSet.from_yaml("version: [")


def test_tokenizer():
    assert tokenize("RBI's rate-cut") == ["RBI", "rate", "cut"]
    assert tokenize("Trump’s ‘liberation day’ tariffs") == ["Trump", "liberation", "day",
                                                             "tariffs"]
    assert tokenize("L&T, M&M and U.S. don't; 6.5% ₹80,000") == [
        "L&T", "M&M", "and", "U.S", "don't", "6.5", "80", "000"]


# --------------------------------------------------------------------------- the kit's feed


def feed_items() -> list[tuple[str, str]]:
    root = ET.parse(FEED).getroot()
    return [((i.findtext("title") or "").strip(), (i.findtext("description") or "").strip())
            for i in root.iter("item")]


@pytest.mark.skipif(not FEED.exists(), reason="the kit's fixtures are not beside the checkout")
def test_every_title_of_the_kit_feed_is_classified():
    items = feed_items()
    assert len(items) == 100
    by_type: dict[str, int] = {}
    for title, summary in items:
        for c in (classify(title), classify(title, summary)):
            valid(c)
        by_type[c.event_type] = by_type.get(c.event_type, 0) + 1
    # an economy feed: mostly macro, some of everything, little left unclassified
    assert len(by_type) >= 7 and by_type.get("other", 0) <= 20
    assert by_type["global_macro"] + by_type["fiscal_budget"] + by_type["geopolitical"] >= 50

"""Explainable, deterministic news classification: event type, symbols, sectors, sentiment
and impact from a versioned rule set (``shared/data/news_rules.yaml``).

Pure: no network, no environment, no clock. The packaged rule file is read once (with
:mod:`importlib.resources`, like :mod:`shared.datafiles`) and cached
(:func:`default_ruleset`); a :class:`RuleSet` can also be built from a mapping or YAML text
(:meth:`RuleSet.from_mapping`, :meth:`RuleSet.from_yaml`) and passed as ``rules=``. A bad
rule file raises :class:`RuleSetError` naming the file and the entry. Every
:class:`~shared.domain.news.items.Classification` records the rule set's ``version``
(``RULESET_VERSION`` here, e.g. ``"2026-11-21.1"``: the file's date and serial).

Matching
--------
The title and the summary are split into tokens by one precompiled regex (letters and
digits, with inner ``& . '`` kept: ``L&T``, ``U.S.``, ``don't``; a possessive ``'s`` is
dropped; hyphens split: ``rate-cut`` = ``rate cut``). The rule file's terms are split by the
same tokenizer, so matching is whole-token and case-insensitive (a term written ``=IT`` is
case-sensitive). One pass over each field's tokens looks the n-grams starting at each token
up in a single table of every term of every rule category (event terms, companies and
indices, sector keywords, the sentiment lexicon, intensity terms, inverse subjects): a
token that starts no term costs one dict lookup. Within a category the longest term at a
position wins and a term inside an earlier, longer match of the same category is not
counted ("net profit" hides "profit"; "HDFC Life" hides "HDFC"); the file's ``ignore``
phrases hide shorter terms and count nothing ("SBI study" is not the bank, "price war" not
a war). Categories do not hide each other: "record date" is a corporate-action term and,
through ``ignore``, not the intensity word "record".

Event type
----------
``score(type) = sum(weight * field_weight)`` over the distinct (term, field) hits of the
type's terms (a term and its plural are one term); weights are 3 (decisive), 2 (strong), 1 (supporting); ``field_weight`` is 2
for the title and 1 for the summary. The highest score wins if it reaches ``min_score``;
ties go to the earlier type of ``priority`` (higher base impact first, so a tie errs on the
cautious side); nothing fired (or too little): ``other``.

Symbols and sectors
-------------------
A company or index named (``entities``) contributes its symbols and sectors whatever the
type: HDFC Bank -> BANKNIFTY and NIFTY (banks), Infosys -> NIFTY (it); in macro news too
(US tariffs on cars naming Jaguar Land Rover -> NIFTY, auto). A sector keyword
contributes its sector, and its symbols unless the type is market-wide
(``market_wide_types``: monetary_policy, fiscal_budget, inflation_data, global_macro,
geopolitical): macro news naming no company stays market-wide (``symbols`` empty; the
news gate reads empty as "every symbol"), naming a sector there does not narrow it. The
exception is the banks sector (``in_macro: true``), whose keywords include RBI, repo
rate, liquidity and CRR: bank / RBI / rate news names BANKNIFTY and NIFTY - both indices,
so it is never narrower than market-wide for the two traded indices. Banks map to both
indices (BANKNIFTY's members and about a third of NIFTY's weight); a bank never yields
BANKNIFTY alone (only naming Bank Nifty itself does). ``symbols`` and ``sectors`` are
sorted.

Sentiment in [-1, 1]
--------------------
Each lexicon hit counts ``weight * field_weight`` to ``pos`` or ``neg``::

    sentiment = (pos - neg) / (pos + neg + 1)     (clipped to [-1, 1], 4 decimals)

Distances are counted in *content tokens* (tokens with a digit and the file's ``skip``
words - a, the, of, to... - are not counted). A negator (not, no, never, unlikely, fails...)
at most ``negation_window`` (2) content tokens before a hit flips it. *Rising* / *falling*
terms (rise, surge, fall, slump, low...) are directional: an *inverse subject* (inflation,
deficit, NPAs, yields, prices...) within ``inverse_window`` content tokens inverts them
("inflation climbs" is negative, "trade deficit at a 42-month low" positive); *positive*
/ *negative* terms ("beats estimates", "misses estimates", "crisis") never are. A
*context* pairs a cut-family or hike-family trigger with the nearest object within
``context_window`` content tokens (following token first on a tie): "rate cut", "RBI cuts
repo rate", "tax cut" are positive, "rate hike", "hikes tariffs" negative, "cuts growth
forecast" negative, "raises guidance" positive; a paired trigger does not also count as a
rising/falling term ("drops import duty" is a duty cut, "Sensex drops" a fall).

Impact in [0, 1]
----------------
::

    impact = 1 - (1 - b) * (1 - i) * (1 - sentiment_weight * |sentiment|)
    b = base_other + (base_type - base_other) * min(1, score / full_evidence)
    i = min(intensity_cap, sum of the distinct intensity terms' boosts)

``base_type`` is the type's base impact (monetary_policy 0.8, fiscal_budget 0.8,
inflation_data 0.6, geopolitical 0.6, global_macro 0.5, regulatory 0.4, earnings 0.3 - 0.5
when a NIFTY heavyweight is named -, corporate_action 0.2, other 0.1); the evidence factor
scales it down when the winning score is below ``full_evidence`` (6: one decisive title
term, or the equivalent), so a type named only in passing ("tariffs" once in a summary, a
bare "RBI") does not reach the news gate's threshold on its base alone. Intensity terms
(emergency, crash 0.2; unexpected, surprise, shock 0.15; record 0.05...) and ``|sentiment|``
can only raise it; every factor is in [0, 1], so impact is too (rounded to 4 decimals).

``why`` records, in order: the winning type with its score and the terms that fired (term,
field, weight x field weight), the other types that fired, the symbols with the names
and keywords that mapped to them, the sectors, the sentiment with its terms (negated or
inverted ones marked) and the impact with its formula filled in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from shared.domain.news.items import EVENT_TYPES, Classification

__all__ = ["RULESET_FILE", "Entity", "RuleSet", "RuleSetError", "classify",
           "default_ruleset", "tokenize"]

RULESET_FILE = "news_rules.yaml"
"""The packaged rule set, in ``shared/data``."""

_DATA_PACKAGE = "shared"
_DATA_DIR = "data"

_TOKEN = re.compile(r"[^\W_]+(?:[&.'\u2019][^\W_]+)*")
_HAS_DIGIT = re.compile(r"\d").search
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}\.\d+$")
_SECTOR_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]*$")
_PLURAL = re.compile(r"^(.*?)\((s|es)\)$")

# rule categories: each has its own longest-match coverage
_EVENTS, _ENTITIES, _SECTORS, _SENTIMENT, _INTENSITY, _INVERSE = range(6)
_CATEGORY = {"events": _EVENTS, "entities": _ENTITIES, "sectors": _SECTORS,
             "sentiment": _SENTIMENT, "intensity": _INTENSITY, "inverse": _INVERSE}
_FIELDS = ("title", "summary")
_TYPES = tuple(t for t in EVENT_TYPES if t != "other")


class RuleSetError(ValueError):
    """The rule set is malformed (the message names the file and the entry)."""


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``, case kept (``"RBI's rate-cut"`` -> ``["RBI", "rate", "cut"]``)."""
    toks = _TOKEN.findall(text)
    if "'" in text or "\u2019" in text:
        toks = [_unquote(t) for t in toks]
    return toks


def _unquote(tok: str) -> str:
    tok = tok.replace("\u2019", "'")
    return tok[:-2] if tok.endswith("'s") else tok


# --------------------------------------------------------------------------- the rule set


@dataclass(frozen=True, slots=True)
class Entity:
    """A company or index the rule set recognises."""

    name: str
    symbols: tuple[str, ...]
    sectors: tuple[str, ...]
    heavyweight: bool = False


@dataclass(frozen=True, slots=True)
class _Sector:
    name: str
    symbols: tuple[str, ...]
    in_macro: bool


@dataclass(frozen=True, slots=True)
class _Context:
    family: str
    weight: float
    objects: Mapping[str, int]  # object token -> +1 / -1


@dataclass(frozen=True, eq=False, slots=True)
class RuleSet:
    """A compiled rule set (build with :meth:`from_mapping` / :meth:`from_yaml`, or use
    :func:`default_ruleset`). Immutable; safe to share."""

    version: str
    field_weight: tuple[float, float]  # title, summary
    min_score: float
    priority: Mapping[str, int]
    market_wide_types: frozenset[str]
    base_impact: Mapping[str, float]
    heavyweight_base: Mapping[str, float]
    full_evidence: float
    sentiment_weight: float
    intensity_cap: float
    skip: frozenset[str]
    negators: frozenset[str]
    negation_window: int
    inverse_window: int
    context_window: int
    triggers: Mapping[str, _Context]
    # term key -> ((category, payloads), ...); keys: lowercase tokens joined by " ", or
    # "=" + case-kept tokens for case-sensitive terms
    lexicon: Mapping[str, tuple[tuple[int, tuple[Any, ...]], ...]]
    # lowercase first token -> ((length, a lowercase key exists, a case-sensitive one), ...),
    # longest first: a token that starts no term costs one lookup
    starts: Mapping[str, tuple[tuple[int, bool, bool], ...]]
    entity_count: int

    # ------------------------------------------------------------------------- building
    @classmethod
    def from_yaml(cls, text: str, name: str = RULESET_FILE) -> RuleSet:
        """Parse and compile YAML ``text`` (``name`` is used in error messages)."""
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            data = yaml.load(text, Loader=loader)  # a safe loader
        except yaml.YAMLError as exc:
            raise RuleSetError(f"{name}: not valid YAML: {exc}") from exc
        return cls.from_mapping(data, name)

    @classmethod
    def from_mapping(cls, data: Any, name: str = RULESET_FILE) -> RuleSet:
        """Validate and compile a rule set given as plain data (the YAML's structure)."""
        return _Compiler(name).compile(data)


@functools.cache
def default_ruleset() -> RuleSet:
    """The packaged rule set (``shared/data/news_rules.yaml``), read and compiled once."""
    text = (resources.files(_DATA_PACKAGE) / _DATA_DIR / RULESET_FILE).read_text(encoding="utf-8")
    return RuleSet.from_yaml(text, RULESET_FILE)


def __getattr__(name: str) -> Any:
    """``RULESET_VERSION``: the packaged rule set's version (read on first use)."""
    if name == "RULESET_VERSION":
        return default_ruleset().version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Compiler:
    """Validates the rule file's structure and builds the lookup tables."""

    _TOP = {"version", "field_weight", "min_score", "priority", "events", "market_wide_types",
            "entities", "sectors", "sentiment", "base_impact", "heavyweight_base",
            "full_evidence", "sentiment_weight", "intensity_cap", "intensity", "ignore"}
    _SENTIMENT = {"skip", "negation_window", "negators", "inverse_window", "inverse",
                  "rising", "falling", "positive", "negative", "context_window", "contexts"}

    def __init__(self, name: str) -> None:
        self.name = name
        # key -> {category: [payload, ...]}
        self.table: dict[str, dict[int, list[Any]]] = {}
        self.owner: dict[tuple[str, int], str] = {}  # (key, category) -> where defined

    def fail(self, where: str, problem: str) -> RuleSetError:
        return RuleSetError(f"{self.name}: {where}: {problem}")

    # ---------------------------------------------------------------------- primitives
    def mapping(self, value: Any, where: str, keys: set[str] | None = None,
                required: set[str] | None = None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        if keys is not None:
            unknown = sorted(str(k) for k in value if k not in keys)
            if unknown:
                raise self.fail(where, f"unknown key(s) {', '.join(unknown)}")
        missing = sorted((required or set()) - set(value))
        if missing:
            raise self.fail(where, f"missing key(s) {', '.join(missing)}")
        return value

    def seq(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def number(self, value: Any, where: str, lo: float, hi: float,
               lo_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {value!r}")
        v = float(value)
        if not (lo < v if lo_open else lo <= v) or v > hi:
            bound = f"({lo:g}" if lo_open else f"[{lo:g}"
            raise self.fail(where, f"{v:g} is outside {bound}, {hi:g}]")
        return v

    def integer(self, value: Any, where: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(where, f"expected an integer in [{lo}, {hi}], got {value!r}")
        return value

    def event_type(self, value: Any, where: str, allow_other: bool = False) -> str:
        known = EVENT_TYPES if allow_other else _TYPES
        if value not in known:
            raise self.fail(where, f"unknown event type {value!r}; known: {', '.join(known)}")
        return str(value)

    def symbols(self, value: Any, where: str) -> tuple[str, ...]:
        out = []
        for s in self.seq(value, where):
            if not isinstance(s, str) or not _SYMBOL.match(s):
                raise self.fail(where, f"bad symbol {s!r} (upper-case letters and digits)")
            out.append(s)
        if len(set(out)) != len(out):
            raise self.fail(where, "a symbol is listed twice")
        return tuple(sorted(out))

    def terms(self, value: Any, where: str) -> list[tuple[str, str, str]]:
        """(key, display form, term as written) for every form of every term of a list."""
        out: list[tuple[str, str, str]] = []
        for term in self.seq(value, where):
            if not isinstance(term, str) or not term.strip():
                raise self.fail(where, f"a term must be a non-empty string, got {term!r} "
                                       "(quote YAML booleans such as \"no\")")
            body = term.strip()
            cs = body.startswith("=")
            if cs:
                body = body[1:].strip()
            m = _PLURAL.match(body)
            forms = [m[1].strip(), m[1].strip() + m[2]] if m else [body]
            for form in forms:
                toks = tokenize(form)
                if not toks:
                    raise self.fail(where, f"term {term!r} has no tokens")
                key = ("=" + " ".join(toks)) if cs else " ".join(t.lower() for t in toks)
                out.append((key, form, body))
        return out

    def token(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a word, got {value!r} (quote YAML booleans)")
        toks = tokenize(value)
        if len(toks) != 1:
            raise self.fail(where, f"{value!r} is not a single token")
        return toks[0].lower()

    def add(self, key: str, category: int, payload: Any, where: str,
            unique: bool = True) -> None:
        slot = self.table.setdefault(key, {}).setdefault(category, [])
        prior = self.owner.get((key, category))
        if prior is not None and (unique or payload is None or None in slot):
            raise self.fail(where, f"term {key.lstrip('=')!r} is already defined in {prior}")
        self.owner.setdefault((key, category), where)
        slot.append(payload)

    # ---------------------------------------------------------------------- sections
    def compile(self, data: Any) -> RuleSet:
        top = self.mapping(data, "top level", self._TOP, self._TOP - {"heavyweight_base", "ignore"})
        version = top["version"]
        if not isinstance(version, str) or not _VERSION.match(version):
            raise self.fail("version", f"expected 'YYYY-MM-DD.N', got {version!r}")

        fw = self.mapping(top["field_weight"], "field_weight", set(_FIELDS), set(_FIELDS))
        field_weight = (self.number(fw["title"], "field_weight.title", 0, 100, True),
                        self.number(fw["summary"], "field_weight.summary", 0, 100, True))
        min_score = self.number(top["min_score"], "min_score", 0, 1e6, True)

        priority = [self.event_type(t, "priority") for t in self.seq(top["priority"], "priority")]
        if sorted(priority) != sorted(_TYPES):
            raise self.fail("priority", f"must list each of {', '.join(_TYPES)} once")

        self.events(self.mapping(top["events"], "events", set(_TYPES)))
        market_wide = frozenset(self.event_type(t, "market_wide_types")
                                for t in self.seq(top["market_wide_types"], "market_wide_types"))
        sectors = self.sectors(self.mapping(top["sectors"], "sectors"))
        entity_count = self.entities(self.seq(top["entities"], "entities"), sectors)
        s = self.mapping(top["sentiment"], "sentiment", self._SENTIMENT, self._SENTIMENT)
        triggers = self.sentiment(s)

        bi = self.mapping(top["base_impact"], "base_impact", set(EVENT_TYPES), set(EVENT_TYPES))
        base_impact = {t: self.number(bi[t], f"base_impact.{t}", 0, 1) for t in EVENT_TYPES}
        hw = self.mapping(top.get("heavyweight_base") or {}, "heavyweight_base", set(_TYPES))
        heavyweight_base = {t: self.number(v, f"heavyweight_base.{t}", 0, 1)
                            for t, v in hw.items()}
        full_evidence = self.number(top["full_evidence"], "full_evidence", 0, 1e6, True)
        sentiment_weight = self.number(top["sentiment_weight"], "sentiment_weight", 0, 1)
        intensity_cap = self.number(top["intensity_cap"], "intensity_cap", 0, 1)
        for boost, terms in self.mapping(top["intensity"], "intensity").items():
            b = self.number(boost, f"intensity.{boost}", 0, 1, True)
            for key, display, _t in self.terms(terms, f"intensity.{boost}"):
                self.add(key, _INTENSITY, (b, display), f"intensity.{boost}")
        for cat, terms in self.mapping(top.get("ignore") or {}, "ignore",
                                       set(_CATEGORY) - {"inverse"}).items():
            for key, _display, _t in self.terms(terms, f"ignore.{cat}"):
                self.add(key, _CATEGORY[cat], None, f"ignore.{cat}")

        lexicon: dict[str, tuple[tuple[int, tuple[Any, ...]], ...]] = {}
        starts: dict[str, dict[int, tuple[bool, bool]]] = {}
        for key, by_cat in self.table.items():
            lexicon[key] = tuple((cat, tuple(p)) for cat, p in sorted(by_cat.items()))
            cs = key.startswith("=")
            toks = key[1:].split(" ") if cs else key.split(" ")
            by_len = starts.setdefault(toks[0].lower(), {})
            low, case = by_len.get(len(toks), (False, False))
            by_len[len(toks)] = (low or not cs, case or cs)
        return RuleSet(
            version=version, field_weight=field_weight, min_score=min_score,
            priority={t: i for i, t in enumerate(priority)}, market_wide_types=market_wide,
            base_impact=base_impact, heavyweight_base=heavyweight_base,
            full_evidence=full_evidence, sentiment_weight=sentiment_weight,
            intensity_cap=intensity_cap, skip=self._skip, negators=self._negators,
            negation_window=self._negation_window, inverse_window=self._inverse_window,
            context_window=self._context_window, triggers=triggers, lexicon=lexicon,
            starts={k: tuple((n, *flags) for n, flags in sorted(v.items(), reverse=True))
                    for k, v in starts.items()},
            entity_count=entity_count)

    def events(self, events: Mapping[Any, Any]) -> None:
        for etype, by_weight in events.items():
            where = f"events.{etype}"
            for weight, terms in self.mapping(by_weight, where).items():
                w = self.number(weight, f"{where}.{weight}", 0, 100, True)
                for key, display, term in self.terms(terms, f"{where}.{weight}"):
                    slot = self.table.get(key, {}).get(_EVENTS, [])
                    if any(p is not None and p[0] == etype for p in slot):
                        raise self.fail(f"{where}.{weight}", f"term {display!r} is listed "
                                                             f"twice for {etype}")
                    self.add(key, _EVENTS, (etype, w, display, term), f"{where}.{weight}",
                             unique=False)

    def sectors(self, sectors: Mapping[Any, Any]) -> dict[str, _Sector]:
        out: dict[str, _Sector] = {}
        for name, spec in sectors.items():
            where = f"sectors.{name}"
            if not isinstance(name, str) or not _SECTOR_NAME.match(name):
                raise self.fail(where, "a sector name is lower-case letters, digits and _")
            spec = self.mapping(spec, where, {"symbols", "in_macro", "terms"},
                                {"symbols", "terms"})
            in_macro = spec.get("in_macro", False)
            if not isinstance(in_macro, bool):
                raise self.fail(f"{where}.in_macro", "expected true or false")
            sector = _Sector(name, self.symbols(spec["symbols"], f"{where}.symbols"), in_macro)
            out[name] = sector
            for key, display, _t in self.terms(spec["terms"], f"{where}.terms"):
                self.add(key, _SECTORS, (sector, display), f"{where}.terms")
        return out

    def entities(self, entities: list[Any], sectors: Mapping[str, _Sector]) -> int:
        names: set[str] = set()
        for i, spec in enumerate(entities):
            where = f"entities[{i}]"
            spec = self.mapping(spec, where, {"name", "terms", "symbols", "sectors",
                                              "heavyweight"}, {"name", "terms", "symbols"})
            name = spec["name"]
            if not isinstance(name, str) or not name.strip() or name in names:
                raise self.fail(f"{where}.name", f"missing or duplicate name {name!r}")
            names.add(name)
            secs = self.seq(spec.get("sectors") or [], f"{where}.sectors")
            unknown = [s for s in secs if s not in sectors]
            if unknown:
                raise self.fail(f"{where}.sectors", f"unknown sector(s) {unknown}")
            heavy = spec.get("heavyweight", False)
            if not isinstance(heavy, bool):
                raise self.fail(f"{where}.heavyweight", "expected true or false")
            entity = Entity(name, self.symbols(spec["symbols"], f"{where}.symbols"),
                            tuple(sorted(set(secs))), heavy)
            for key, display, _t in self.terms(spec["terms"], f"{where}.terms ({name})"):
                self.add(key, _ENTITIES, (entity, display), f"{where}.terms ({name})")
        return len(names)

    def sentiment(self, s: Mapping[Any, Any]) -> dict[str, _Context]:
        self._skip = frozenset(self.token(t, "sentiment.skip")
                               for t in self.seq(s["skip"], "sentiment.skip"))
        self._negators = frozenset(self.token(t, "sentiment.negators")
                                   for t in self.seq(s["negators"], "sentiment.negators"))
        if self._skip & self._negators:
            raise self.fail("sentiment.skip", f"negators cannot be skipped: "
                                              f"{sorted(self._skip & self._negators)}")
        self._negation_window = self.integer(s["negation_window"], "sentiment.negation_window",
                                             0, 10)
        self._inverse_window = self.integer(s["inverse_window"], "sentiment.inverse_window",
                                            0, 20)
        self._context_window = self.integer(s["context_window"], "sentiment.context_window",
                                            1, 10)
        for key, display, _t in self.terms(s["inverse"], "sentiment.inverse"):
            self.add(key, _INVERSE, display, "sentiment.inverse")
        for section, sign, directional in (("rising", 1, True), ("falling", -1, True),
                                           ("positive", 1, False), ("negative", -1, False)):
            where = f"sentiment.{section}"
            for weight, terms in self.mapping(s[section], where).items():
                w = self.number(weight, f"{where}.{weight}", 0, 100, True)
                for key, display, _t in self.terms(terms, f"{where}.{weight}"):
                    self.add(key, _SENTIMENT, (sign, w, directional, display),
                             f"{where}.{weight}")
        triggers: dict[str, _Context] = {}
        for family, spec in self.mapping(s["contexts"], "sentiment.contexts").items():
            where = f"sentiment.contexts.{family}"
            spec = self.mapping(spec, where, {"triggers", "objects", "weight"},
                                {"triggers", "objects"})
            weight = self.number(spec.get("weight", 1), f"{where}.weight", 0, 100, True)
            objects: dict[str, int] = {}
            for sign, words in self.mapping(spec["objects"], f"{where}.objects").items():
                if sign not in (1, -1):
                    raise self.fail(f"{where}.objects", f"keys are +1 and -1, got {sign!r}")
                for w in self.seq(words, f"{where}.objects.{sign:+d}"):
                    tok = self.token(w, f"{where}.objects.{sign:+d}")
                    if tok in objects:
                        raise self.fail(f"{where}.objects", f"{tok!r} is listed twice")
                    objects[tok] = sign
            context = _Context(str(family), weight, objects)
            for w in self.seq(spec["triggers"], f"{where}.triggers"):
                tok = self.token(w, f"{where}.triggers")
                if tok in triggers:
                    raise self.fail(f"{where}.triggers", f"{tok!r} already triggers "
                                                         f"{triggers[tok].family}")
                triggers[tok] = context
        return triggers


# --------------------------------------------------------------------------- classifying


class _Field:
    """One field's tokens and its rule hits."""

    __slots__ = ("low", "ci", "content", "hits")

    def __init__(self, text: str, rules: RuleSet) -> None:
        orig = tokenize(text)
        low = [t.lower() for t in orig]
        skip = rules.skip
        n_tok = len(low)
        ci = [0] * (n_tok + 1)  # ci[i]: content tokens before token i
        content: list[int] = []  # token index of each content token
        for i, t in enumerate(low):
            ci[i] = len(content)
            if t not in skip and (t.isalpha() or not _HAS_DIGIT(t)):
                content.append(i)
        ci[n_tok] = len(content)
        self.low, self.ci, self.content = low, ci, content
        hits: list[tuple[int, Any, int, int]] = []  # (category, payload, start, end)
        self.hits = hits
        lexicon, starts = rules.lexicon, rules.starts
        cover = [0, 0, 0, 0, 0, 0]  # per category: the end of its last match
        for i in range(n_tok):
            lens = starts.get(low[i])
            if lens is None:
                continue
            for n, has_low, has_cs in lens:
                end = i + n
                if end > n_tok:
                    continue
                for key in ((" ".join(low[i:end]) if has_low else None),
                            ("=" + " ".join(orig[i:end]) if has_cs else None)):
                    found = lexicon.get(key) if key is not None else None
                    if found is None:
                        continue
                    for cat, payloads in [(c, p) for c, p in found if end > cover[c]]:
                        cover[cat] = end
                        for p in payloads:
                            if p is not None:
                                hits.append((cat, p, i, end))

    def span_gap(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        """Content-token distance between two token spans (0 or less: they touch/overlap)."""
        if a[1] <= b[0]:
            return self.ci[b[0]] - self.ci[a[1]] + 1
        if b[1] <= a[0]:
            return self.ci[a[0]] - self.ci[b[1]] + 1
        return 0

    def negator(self, start: int, rules: RuleSet) -> str | None:
        """The negator within ``negation_window`` content tokens before token ``start``."""
        k = self.ci[start]
        for j in range(k - 1, max(k - 1 - rules.negation_window, -1), -1):
            tok = self.low[self.content[j]]
            if tok in rules.negators:
                return tok
        return None


def _f(x: float) -> str:
    return f"{x:g}"


def classify(title: str, summary: str = "", *, rules: RuleSet | None = None) -> Classification:
    """Classify one news item (module docstring): type, symbols, sectors, sentiment, impact,
    the rules that fired (``why``) and the rule set's version. Deterministic and pure."""
    rs = rules if rules is not None else default_ruleset()
    fields = (_Field(title or "", rs), _Field(summary or "", rs))
    why: list[str] = []

    # ---- event type
    scores: dict[str, float] = {}
    terms_by_type: dict[str, list[str]] = {}
    seen: set[tuple[str, str, int]] = set()
    for fi, field in enumerate(fields):
        mult = rs.field_weight[fi]
        for cat, p, _s, _e in field.hits:
            if cat != _EVENTS:
                continue
            etype, weight, display, term = p
            if (etype, term, fi) in seen:  # each term once per field, whatever its form
                continue
            seen.add((etype, term, fi))
            scores[etype] = scores.get(etype, 0.0) + weight * mult
            terms_by_type.setdefault(etype, []).append(
                f"'{display}' {_FIELDS[fi]} {_f(weight)}x{_f(mult)}")
    ranked = sorted(scores, key=lambda t: (-scores[t], rs.priority[t]))
    score = scores[ranked[0]] if ranked else 0.0
    if ranked and score >= rs.min_score:
        event_type = ranked[0]
        line = (f"event_type {event_type}: score {_f(score)} from "
                + ", ".join(terms_by_type[event_type]))
        tied = [t for t in ranked[1:] if scores[t] == score]
        if tied:
            line += f" (tie with {', '.join(tied)} broken by priority)"
        why.append(line)
        others = ranked[1:]
    else:
        event_type = "other"
        why.append("event_type other: no event rule fired" if not ranked else
                   f"event_type other: best score {_f(score)} ({ranked[0]}) below "
                   f"min_score {_f(rs.min_score)}")
        others = ranked
    for t in others:
        why.append(f"also {t}: score {_f(scores[t])} from {', '.join(terms_by_type[t])}")

    # ---- symbols and sectors
    symbols: set[str] = set()
    sectors: set[str] = set()
    heavy: list[str] = []
    sym_notes: list[str] = []
    sec_notes: list[str] = []
    macro = event_type in rs.market_wide_types
    noted: set[str] = set()
    for field in fields:
        for cat, p, _s, _e in field.hits:
            if cat == _ENTITIES:
                entity, display = p
                symbols.update(entity.symbols)
                sectors.update(entity.sectors)
                if entity.heavyweight and entity.name not in heavy:
                    heavy.append(entity.name)
                note = (f"'{display}' -> {entity.name} "
                        f"[{', '.join(entity.symbols) or 'no symbol'}]")
                for sec in entity.sectors:
                    if f"{display}>{sec}" not in noted:
                        noted.add(f"{display}>{sec}")
                        sec_notes.append(f"'{display}' -> {sec}")
            elif cat == _SECTORS:
                sector, display = p
                sectors.add(sector.name)
                if f"{display}>{sector.name}" not in noted:
                    noted.add(f"{display}>{sector.name}")
                    sec_notes.append(f"'{display}' -> {sector.name}")
                if not sector.symbols:
                    continue
                if macro and not sector.in_macro:
                    note = (f"sector {sector.name} '{display}' not applied "
                            f"({event_type} is market-wide)")
                else:
                    symbols.update(sector.symbols)
                    note = f"sector {sector.name} '{display}' -> [{', '.join(sector.symbols)}]"
            else:
                continue
            if note not in sym_notes:
                sym_notes.append(note)
    sym = tuple(sorted(symbols))
    head = f"symbols {', '.join(sym)}" if sym else "symbols none (market-wide)"
    why.append(f"{head}: {'; '.join(sym_notes)}" if sym_notes else
               f"{head}: no company, index or sector named")
    sec = tuple(sorted(sectors))
    if sec:
        why.append(f"sectors {', '.join(sec)}: {', '.join(sec_notes)}")

    # ---- sentiment
    pos = neg = 0.0
    sent_notes: list[str] = []
    for fi, field in enumerate(fields):
        mult = rs.field_weight[fi]
        used: set[int] = set()  # token indices taken by a context (trigger or object)
        paired_triggers: set[int] = set()
        content, low = field.content, field.low
        if rs.triggers:
            for k, ti in enumerate(content):
                ctx = rs.triggers.get(low[ti])
                if ctx is None or ti in used:
                    continue
                obj = None
                for d in range(1, rs.context_window + 1):
                    for kk in (k + d, k - d):
                        if 0 <= kk < len(content) and content[kk] not in used \
                                and low[content[kk]] in ctx.objects:
                            obj = kk
                            break
                    if obj is not None:
                        break
                if obj is None:
                    continue
                oi = content[obj]
                used.update((ti, oi))
                paired_triggers.add(ti)
                sign = ctx.objects[low[oi]]
                first = min(ti, oi)
                neg_by = field.negator(first, rs)
                if neg_by:
                    sign = -sign
                w = ctx.weight * mult
                if sign > 0:
                    pos += w
                else:
                    neg += w
                a, b = (low[ti], low[oi]) if ti < oi else (low[oi], low[ti])
                sent_notes.append(f"{'+' if sign > 0 else '-'}'{a}'+'{b}' ({ctx.family}) "
                                  f"{_FIELDS[fi]} {_f(ctx.weight)}x{_f(mult)}"
                                  + (f" negated by '{neg_by}'" if neg_by else ""))
        inverses = [(s, e, p) for cat, p, s, e in field.hits if cat == _INVERSE]
        for cat, p, s, e in field.hits:
            if cat != _SENTIMENT:
                continue
            sign, weight, directional, display = p
            if directional and s in paired_triggers:
                continue
            extra = ""
            if directional:
                for i_s, i_e, i_display in inverses:
                    if field.span_gap((s, e), (i_s, i_e)) <= rs.inverse_window:
                        sign = -sign
                        extra += f" inverted by '{i_display}'"
                        break
            neg_by = field.negator(s, rs)
            if neg_by:
                sign = -sign
                extra += f" negated by '{neg_by}'"
            w = weight * mult
            if sign > 0:
                pos += w
            else:
                neg += w
            sent_notes.append(f"{'+' if sign > 0 else '-'}'{display}' {_FIELDS[fi]} "
                              f"{_f(weight)}x{_f(mult)}{extra}")
    sentiment = round(min(1.0, max(-1.0, (pos - neg) / (pos + neg + 1.0))), 4)
    if sent_notes:
        why.append(f"sentiment {sentiment:+.4f} = (pos {_f(pos)} - neg {_f(neg)}) / "
                   f"(pos + neg + 1): {', '.join(sent_notes)}")
    else:
        why.append("sentiment 0: no lexicon term")
    sentiment = sentiment + 0.0  # no negative zero

    # ---- impact
    base_other = rs.base_impact["other"]
    if event_type == "other":
        base, base_note = base_other, f"other base {_f(base_other)}"
    else:
        base = rs.base_impact[event_type]
        base_note = f"{event_type} base {_f(base)}"
        if heavy and event_type in rs.heavyweight_base:
            base = rs.heavyweight_base[event_type]
            base_note = f"{event_type} base {_f(base)} (heavyweight {', '.join(heavy)})"
        evidence = min(1.0, score / rs.full_evidence)
        if evidence < 1.0:
            base = base_other + (base - base_other) * evidence
            base_note += f" scaled by evidence {score:g}/{_f(rs.full_evidence)}"
    boosts: dict[str, float] = {}
    for field in fields:
        for cat, p, _s, _e in field.hits:
            if cat == _INTENSITY:
                boost, display = p
                boosts.setdefault(display.lower(), boost)
    intensity = min(rs.intensity_cap, sum(boosts.values()))
    raw = 1.0 - (1.0 - base) * (1.0 - intensity) * (1.0 - rs.sentiment_weight * abs(sentiment))
    impact = round(min(1.0, max(0.0, raw)), 4)
    line = (f"impact {impact:.4f} = 1 - (1 - b {base:.4f}) * (1 - i {intensity:.4g}) * "
            f"(1 - {_f(rs.sentiment_weight)} * |sentiment|); b: {base_note}")
    if boosts:
        line += ("; i: " + ", ".join(f"'{t}' {_f(b)}" for t, b in boosts.items())
                 + (f" (capped at {_f(rs.intensity_cap)})"
                    if sum(boosts.values()) > rs.intensity_cap else ""))
    why.append(line)

    return Classification(event_type=event_type, symbols=sym, sectors=sec,
                          sentiment=sentiment, impact=impact, why=tuple(why),
                          ruleset=rs.version)

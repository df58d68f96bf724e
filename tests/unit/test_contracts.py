import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared import contracts as c
from shared.errors import ContractViolation, UnknownTopic

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
TENANT = uuid.UUID("11111111-1111-4111-8111-111111111111")


def proposal(**over):
    base = dict(
        proposal_id=uuid.UUID("22222222-2222-4222-8222-222222222222"),
        tenant_id=TENANT,
        snapshot_id=uuid.UUID("33333333-3333-4333-8333-333333333333"),
        symbol="NIFTY",
        structure=c.Structure.IRON_CONDOR,
        legs=(
            c.Leg(expiry=date(2026, 11, 24), strike=Decimal("26000"), option_type=c.OptionType.CE,
                  side=c.Side.SELL, lots=1, price=Decimal("85.5")),
        ),
        lot_size=65,
        max_profit=5557.5,
        max_loss=10692.5,
        expected_gross_edge=900.0,
        win_probability=0.62,
        regime="range",
        proposed_at=NOW,
    )
    base.update(over)
    return c.DecisionProposedV1(**base)


def test_every_topic_has_a_contract_and_a_version():
    assert len(c.TOPICS) == 12
    for topic, versions in c.CONTRACTS.items():
        assert versions, topic
        for version, model in versions.items():
            assert model.topic == topic and model.schema_version == version


def test_round_trip_keeps_every_field_and_sets_attributes():
    msg = proposal()
    data, attrs = c.encode(msg)
    assert attrs == {"contract": "decision.proposed", "contract_version": "1", "tenant_id": str(TENANT)}
    assert c.decode(data, attrs) == msg


def test_golden_probe_envelope_decodes():
    envelope = json.loads((GOLDEN / "probe_ping_v1.json").read_text())
    msg = c.decode(envelope["data"].encode(), envelope["attributes"])
    assert isinstance(msg, c.ProbePingV1)
    assert msg.behaviour == "ok"
    assert msg.sent_at.tzinfo is not None


def test_messages_are_frozen():
    msg = proposal()
    with pytest.raises(Exception, match="frozen"):
        msg.symbol = "BANKNIFTY"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("attrs", "error", "match"),
    [
        ({}, UnknownTopic, "no known contract"),
        ({"contract": "no.such.topic"}, UnknownTopic, "no known contract"),
        ({"contract": "decision.proposed", "contract_version": "9"}, UnknownTopic, "no contract version '9'"),
        ({"contract": "decision.proposed", "contract_version": "one"}, UnknownTopic, "version"),
    ],
)
def test_unknown_topics_and_versions_are_permanent(attrs, error, match):
    data, _ = c.encode(proposal())
    with pytest.raises(error, match=match):
        c.decode(data, attrs)


def test_contract_violations_name_the_field():
    data, attrs = c.encode(proposal())
    payload = json.loads(data)
    payload["win_probability"] = 1.7
    with pytest.raises(ContractViolation, match="win_probability"):
        c.decode(json.dumps(payload).encode(), attrs)
    payload = json.loads(data)
    payload["legs"][0]["lots"] = 0
    with pytest.raises(ContractViolation, match="legs.0.lots"):
        c.decode(json.dumps(payload).encode(), attrs)
    payload = json.loads(data)
    payload["proposed_at"] = "2026-11-20T09:30:00"  # naive time
    with pytest.raises(ContractViolation, match="proposed_at"):
        c.decode(json.dumps(payload).encode(), attrs)
    payload = json.loads(data)
    payload["surprise"] = 1
    with pytest.raises(ContractViolation, match="surprise"):
        c.decode(json.dumps(payload).encode(), attrs)


def test_not_json_is_a_contract_violation():
    with pytest.raises(ContractViolation, match="not JSON"):
        c.decode(b"\xff\xfe not json", {"contract": "local.probe"})


def test_tenant_attribute_must_match_the_payload():
    data, attrs = c.encode(proposal())
    attrs["tenant_id"] = str(uuid.uuid4())
    with pytest.raises(ContractViolation, match="does not match"):
        c.decode(data, attrs)


def test_market_wide_messages_carry_no_tenant_attribute():
    snap = c.ChainSnapshotV1(
        snapshot_id=uuid.uuid4(), symbol="NIFTY", asof=NOW, spot=26012.5, source="nse",
        expiries=(date(2026, 11, 24),), legs=812, raw_blob="gs://qs-raw-snapshots/nse/abc.json.gz",
    )
    _, attrs = c.encode(snap)
    assert "tenant_id" not in attrs


@pytest.mark.parametrize("field", ["max_loss", "expected_gross_edge", "max_profit"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_never_pass_a_contract(field, value):
    data, attrs = c.encode(proposal())
    text = data.decode().replace(f'"{field}":', f'"{field}":{value},"_x":', 1)
    payload = json.loads(text)  # Python's json reads NaN/Infinity literals
    payload.pop("_x")
    with pytest.raises(ContractViolation, match=field):
        c.decode(json.dumps(payload).encode(), attrs)
    with pytest.raises(ValueError):
        proposal(**{field: float(value.lower().replace("infinity", "inf"))})

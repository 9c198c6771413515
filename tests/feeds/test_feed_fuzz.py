"""Fuzzing the feed readers (feeds stage): arbitrary bytes and mutated files never raise anything
but recon's own errors, never hang, and never drop a good line silently."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import bank_csv, canonical_csv, paypal, shopify, stripe
from feeds.registry import read_any
from models.errors import ReconError
from models.schema import FeedResult

DATA = Path(__file__).parent / "data"
FUZZ = settings(
    max_examples=40,
    deadline=3000,  # ms per example: a reader that hangs fails here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
PROFILE = bank_csv.load_profile(str(DATA / "bank_profile_sample.toml"))
SEEDS = {
    "canonical": (DATA / "bank_sample.csv").read_bytes(),
    "stripe_csv": (DATA / "stripe_payout_sample.csv").read_bytes(),
    "profile": (DATA / "bank_profile_sample_gb18030.csv").read_bytes(),
    "stripe_json": json.dumps({"object": "list", "data": [
        {"id": "txn_1", "object": "balance_transaction", "amount": 100, "fee": 3, "net": 97, "currency": "usd"}]}).encode(),
    "shopify_json": json.dumps({"transactions": [
        {"id": 1, "type": "charge", "payout_id": 2, "currency": "USD", "amount": "1.00", "fee": "0.10", "net": "0.90"}]}).encode(),
    "paypal_csv": (
        "Date,Time,TimeZone,Name,Type,Status,Currency,Gross,Fee,Net,Transaction ID\n"
        "10/01/2019,03:46:20,PDT,Zoë,Payment Received,Completed,USD,10.00,-0.59,9.41,T1\n"
    ).encode(),
}
READERS = {
    "canonical": lambda p: canonical_csv.read(p, side="bank"),
    "profile": lambda p: bank_csv.read(p, profile=PROFILE),
    "stripe_csv": lambda p: stripe.read(p),
    "stripe_json": lambda p: stripe.read(p),
    "shopify_json": lambda p: shopify.read(p),
    "paypal_csv": lambda p: paypal.read(p),
    "detect_bank": lambda p: read_any(p, "bank"),
    "detect_processor": lambda p: read_any(p, "processor"),
}


def run(reader, data: bytes) -> FeedResult | None:
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "input.dat")
        Path(path).write_bytes(data)
        try:
            result = reader(path)
        except ReconError:
            return None
        assert isinstance(result, FeedResult)
        assert result.rows_read == result.frame.height + result.rejects.height
        return result


@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_recon_errors(name, data):
    run(READERS[name], data)


@st.composite
def mutated(draw, seed: bytes):
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "quote", "newline"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "quote":
            data[at:at] = b'"'
        else:
            data[at:at] = b"\r\n" if draw(st.booleans()) else b"\n"
    return bytes(data)


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(st.data())
def test_mutated_samples_raise_only_recon_errors(name, data):
    variant = data.draw(mutated(SEEDS[name]))
    reader = READERS[name]
    run(reader, variant)


# --- no good line is lost silently --------------------------------------------------------------

GOOD = [f"B{i},2026-01-{i + 1:02d},{i}.50,HKD,Zoë Müller 陳{i}" for i in range(8)]
JUNK = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
)


@FUZZ
@given(junk=st.lists(st.tuples(st.integers(0, len(GOOD)), JUNK), max_size=4))
def test_every_good_line_is_loaded_or_named_in_a_reject(junk):
    lines = list(GOOD)
    for position, text in sorted(junk, reverse=True):
        lines.insert(position, text)
    data = ("id,date,amount,currency,description\n" + "\n".join(lines) + "\n").encode("utf-8")
    result = run(READERS["canonical"], data)
    assert result is not None
    loaded = set(result.frame["id"])
    raw = "\n".join(result.rejects["raw"].to_list())
    for line in GOOD:
        identifier = line.split(",")[0]
        assert identifier in loaded or line in raw, f"{identifier} vanished"
    # descriptions survive byte-exact
    for row in result.frame.iter_rows(named=True):
        if row["id"] in {g.split(",")[0] for g in GOOD}:
            index = int(row["id"][1:])
            assert row["description"] == f"Zoë Müller 陳{index}"


@FUZZ
@given(junk=st.lists(st.tuples(st.integers(0, 3), JUNK), max_size=3))
def test_profile_reader_keeps_good_lines(junk):
    good = [f"2026-01-0{i + 1} 10:00:00,Société {i},收入,¥{i}.25,ORD-{i}" for i in range(4)]
    lines = list(good)
    for position, text in sorted(junk, reverse=True):
        lines.insert(position, text)
    data = ("交易时间,对方,方向,金额,订单号\n" + "\n".join(lines) + "\n").encode("gb18030", errors="replace")
    result = run(READERS["profile"], data)
    if result is None:  # junk that is not GB18030-encodable became '?': still a readable file
        return
    loaded = set(result.frame["reference"])
    raw = "\n".join(result.rejects["raw"].to_list())
    for i, line in enumerate(good):
        assert f"ORD-{i}" in loaded or line in raw

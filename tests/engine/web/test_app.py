"""The review page's application without a browser: health check, sign-in (token, users file),
the reviewer each decision records, CSRF and Host checks, input validation, amounts formatted
for their currency."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from starlette.testclient import TestClient

from engine import api
from engine.web.app import create_app
from engine.web.auth import Auth, hash_password, require_safe_bind, verify_password
from engine.web.queries import format_amount
from models.errors import ReconError

BASE = "http://127.0.0.1:8765"
ROOT = Path(__file__).resolve().parents[3]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _a_review_match(ws: Path) -> str:
    return api.review(ws, status="review")["match_id"][0]


def _decided_by(ws: Path, match_id: str) -> list[tuple[str, str]]:
    with duckdb.connect(str(ws), read_only=True) as con:
        return con.execute('SELECT action, "by" FROM decisions WHERE match_id = ? ORDER BY seq', [match_id]).fetchall()


def test_healthz_answers_200_with_json(sample_ws):
    with TestClient(create_app(sample_ws), base_url=BASE) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert "app;dur=" in response.headers["server-timing"]


def test_a_write_without_the_csrf_token_or_from_another_origin_is_refused(sample_ws):
    match_id = _a_review_match(sample_ws)
    with TestClient(create_app(sample_ws, idle=0.2), base_url=BASE) as client:
        token = _csrf(client.get("/").text)
        missing = client.post(f"/api/matches/{match_id}/accept", json={})
        wrong = client.post(f"/api/matches/{match_id}/accept", json={}, headers={"X-CSRF-Token": "x" * 43})
        foreign = client.post(f"/api/matches/{match_id}/accept", json={},
                              headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
        other_host = client.get("/", headers={"Host": "evil.example"})
    assert [r.status_code for r in (missing, wrong, foreign)] == [403, 403, 403]
    assert "CSRF" in missing.json()["error"] and "evil.example" in foreign.json()["error"]
    assert other_host.status_code == 400  # DNS rebinding: a page reached by another name
    assert _decided_by(sample_ws, match_id) == []


def test_token_sign_in_records_the_reviewer_named_at_sign_in(sample_ws, monkeypatch):
    monkeypatch.setenv("RECON_TEST_TOKEN", "t0ken-of-at-least-16-chars")
    match_id = _a_review_match(sample_ws)
    app = create_app(sample_ws, auth=Auth.configure(token_env="RECON_TEST_TOKEN"), idle=0.2)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        assert client.get("/").status_code == 303
        assert client.post(f"/api/matches/{match_id}/accept", json={}).status_code in (401, 403)
        login = client.get("/login")
        token = _csrf(login.text)
        refused = client.post("/login", data={"csrf_token": token, "name": "陳大文", "secret": "wrong-token-xxxxxxx"})
        assert refused.status_code == 401
        signed = client.post("/login", data={"csrf_token": token, "name": "陳大文", "secret": "t0ken-of-at-least-16-chars",
                                             "next": "/?status=review"})
        assert signed.status_code == 303 and signed.headers["location"] == "/?status=review"
        page = client.get("/")
        assert page.status_code == 200 and "陳大文" in page.text
        done = client.post(f"/api/matches/{match_id}/accept", json={}, headers={"X-CSRF-Token": _csrf(page.text)})
    assert done.status_code == 200 and done.json()["by"] == "陳大文"
    assert _decided_by(sample_ws, match_id) == [("accept", "陳大文")]


def test_users_file_from_serve_passwd_signs_reviewers_in(sample_ws, tmp_path):
    users = tmp_path / "users.txt"
    made = subprocess.run([sys.executable, "-m", "engine.cli", "serve-passwd", str(users), "金港 reviewer"],
                          input="correct horse\n", capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    assert "correct horse" not in users.read_text(encoding="utf-8")
    app = create_app(sample_ws, auth=Auth.configure(users_file=users), idle=0.2)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        token = _csrf(client.get("/login").text)
        bad = client.post("/login", data={"csrf_token": token, "name": "金港 reviewer", "secret": "wrong"})
        good = client.post("/login", data={"csrf_token": token, "name": "金港 reviewer", "secret": "correct horse"})
    assert bad.status_code == 401 and good.status_code == 303


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first.startswith("scrypt$") and first != second
    assert verify_password("s3cret", first) and not verify_password("s3cret!", first)


@pytest.mark.parametrize("host, auth, refused", [
    ("127.0.0.1", Auth(mode="local"), False),
    ("::1", Auth(mode="local"), False),
    ("localhost", Auth(mode="local"), False),
    ("0.0.0.0", Auth(mode="local"), True),
    ("10.1.2.3", Auth(mode="local"), True),
    ("0.0.0.0", Auth(mode="token", token="x" * 20), False),
    ("0.0.0.0", Auth(mode="users", users={"a": "scrypt$"}), False),
])
def test_a_non_local_address_needs_authentication(host, auth, refused):
    if refused:
        with pytest.raises(ReconError, match=f"refusing to serve on {re.escape(host)} without authentication"):
            require_safe_bind(host, auth)
    else:
        require_safe_bind(host, auth)


def test_bad_filters_and_unknown_matches_are_named(sample_ws):
    with TestClient(create_app(sample_ws), base_url=BASE) as client:
        bad = client.get("/?min=ten&state=lost&currency=HK")
        unknown = client.get("/matches/M-0000000000000000")
        action = client.post("/api/matches/M-1/approve", json={}, headers={"X-CSRF-Token": _csrf(client.get("/").text)})
    assert bad.status_code == 400
    for words in ("minimum amount 'ten' is not an amount", "state 'lost' is not one of", "currency 'HK'"):
        assert words in html.unescape(bad.text)
    assert unknown.status_code == 404 and "no match M-0000000000000000" in unknown.text
    assert action.status_code == 404


def test_a_refused_decision_says_why_in_one_line(sample_ws):
    match_id = _a_review_match(sample_ws)
    with TestClient(create_app(sample_ws, idle=0.2), base_url=BASE) as client:
        token = _csrf(client.get("/").text)
        first = client.post(f"/api/matches/{match_id}/reject", json={}, headers={"X-CSRF-Token": token})
        again = client.post(f"/api/matches/{match_id}/accept", json={}, headers={"X-CSRF-Token": token})
    assert first.status_code == 200 and first.json()["state"] == "rejected"
    assert again.status_code == 400
    assert again.json()["error"] == (f"accept: nothing done: {match_id} is rejected; "
                                     "accept applies to a match that is failed or proposed")


def test_the_queue_filters_by_text_amount_and_date_and_formats_amounts(sample_ws):
    with TestClient(create_app(sample_ws), base_url=BASE) as client:
        page = client.get("/?state=any&q=INV-2026-00067&min=15000&max=15100&from=2026-10-02&to=2026-10-02")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-match-id="([^"]+)"', page.text)
    assert len(rows) == 1
    assert "HKD 15,018.30" in page.text and "HKD -151.70" in page.text


@pytest.mark.parametrize("text, currency, shown", [
    ("14149.8", "HKD", "HKD 14,149.80"),
    ("-1234567.5", "HKD", "HKD -1,234,567.50"),
    ("500000", "JPY", "JPY 500,000"),
    ("1.25", "KWD", "KWD 1.250"),
    ("", "HKD", ""),
])
def test_amounts_are_formatted_for_their_currency(text, currency, shown):
    assert format_amount(text, currency) == shown


def test_the_report_page_asks_for_a_period(sample_ws):
    with TestClient(create_app(sample_ws), base_url=BASE) as client:
        empty = client.get("/report")
        bad = client.get("/report?period=2026-13")
    assert empty.status_code == 200 and 'name="period"' in empty.text
    assert bad.status_code == 400 and "give a month as YYYY-MM" in html.unescape(bad.text)


def test_a_pair_proposal_shows_each_comparison_level_with_its_weight_adding_up_to_its_score(sample_ws):
    proposals = api.review(sample_ws, status="review")
    pair = proposals.filter(proposals["match_type"] == "one_to_one")
    match_id = pair["match_id"][0]
    confidence = float(pair["confidence"][0])
    with TestClient(create_app(sample_ws), base_url=BASE) as client:
        page = client.get(f"/matches/{match_id}").text
    table = page.split('id="level-weights"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td><td class=\"num[^\"]*\">([^<]*)</td></tr>", table)
    comparisons = [r[0] for r in rows]
    assert comparisons == ["prior", "reference", "amount", "commonness", "uniqueness", "name", "date", "window"]
    total = float(re.search(r'class="total".*?<td class="num">([^<]+)</td>', table, re.S).group(1))
    assert total == pytest.approx(sum(float(r[2]) for r in rows if r[2]))
    # the weights are the scorer's: they give the proposal's confidence (unless the review
    # floor lifted it to the review threshold)
    assert 1 / (1 + 2 ** -total) == pytest.approx(confidence, abs=0.002) or confidence == 0.5

"""Pages that stay light on a rural link (issue #9 §8) and the case page's BPMN diagram (§5):
fingerprinted static URLs cached for a year, text compressed, the bpmn-js viewer vendored from npm and
served by the app, the diagram's JSON scoped like the case page, and every page's first-load weight.

The vendored files come from `make assets` (web/frontend/vendor.txt); `make test` builds them first."""
from __future__ import annotations

import gzip
import hashlib
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine import db, queries
from engine.errors import NotFound

from .conftest import CLERK, COUNTY_MZ, OTHER_CLERK, complete, form_for, ready_tasks, start, user, worker_for
from .webtools import login

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
VIEWER = "vendor/bpmn-js/dist/bpmn-navigated-viewer.production.min.js"
FINGERPRINTED = re.compile(r'/static/([^"?]+)\?v=([0-9a-f]{16})"')
#: Issue #9 §8: no page over 300 KB on first load, compressed.
BUDGET = 300 * 1024
GZIP = {"Accept-Encoding": "gzip"}


def _vendored() -> None:
    assert (STATIC / VIEWER).is_file(), f"web/static/{VIEWER} is missing: run `make assets` (npm ci + copy)"


def test_static_urls_carry_their_content_hash_and_are_cached_for_a_year(client):
    html = client.get("/login").get_data(as_text=True)
    urls = dict(FINGERPRINTED.findall(html))
    assert {"yicun.css", "yicun.js"} <= urls.keys(), html[:800]
    for name, digest in urls.items():
        assert digest == hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:16], name
    resp = client.get(f"/static/yicun.css?v={urls['yicun.css']}")
    assert resp.status_code == 200
    assert set(resp.headers["Cache-Control"].split(", ")) == {"public", "max-age=31536000", "immutable"}
    assert "Expires" not in resp.headers

    plain = client.get("/static/yicun.css")  # no fingerprint: revalidated every time, with its ETag
    assert plain.status_code == 200 and "immutable" not in plain.headers["Cache-Control"]
    assert "no-cache" in plain.headers["Cache-Control"] and plain.headers["ETag"]
    assert client.get("/static/yicun.css", headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304
    stale = client.get("/static/yicun.css?v=0123456789abcdef")  # a page from before a deploy: current file, short-lived
    assert stale.status_code == 200 and stale.data == plain.data
    assert "immutable" not in stale.headers["Cache-Control"] and "no-cache" in stale.headers["Cache-Control"]
    assert client.get("/static/no-such-file.css").status_code == 404
    assert client.get("/static/../setup.cfg").status_code == 404


def test_text_is_compressed_for_a_client_that_accepts_gzip(client):
    page = client.get("/login", headers=GZIP)
    assert page.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in page.headers["Vary"]
    assert "登录" in gzip.decompress(page.data).decode()
    assert "Content-Encoding" not in client.get("/login").headers  # a client that did not ask gets it plain

    css = client.get("/static/yicun.css", headers=GZIP)  # a static file too (Werkzeug streams it; read whole)
    raw = (STATIC / "yicun.css").read_bytes()
    assert css.headers["Content-Encoding"] == "gzip" and gzip.decompress(css.data) == raw
    assert int(css.headers["Content-Length"]) == len(css.data) < len(raw) / 2
    again = client.get("/static/yicun.css", headers={**GZIP, "If-None-Match": css.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    part = client.get("/static/yicun.css", headers={"Accept-Encoding": "gzip, br, zstd", "Range": "bytes=0-1999"})
    assert part.status_code == 206 and "Content-Encoding" not in part.headers and part.data == raw[:2000]


def test_the_vendored_viewer_is_served_compressed_and_cached(client, seeded):
    _vendored()
    number = start(seeded, service="FX-DIBAO").case_number
    login(client, CLERK)
    html = client.get(f"/cases/{number}").get_data(as_text=True)
    urls = dict(FINGERPRINTED.findall(html))
    assert VIEWER in urls and "diagram.js" in urls and "diagram.css" in urls
    assert "vendor/bpmn-js/dist/assets/diagram-js.css" in urls and "vendor/bpmn-js/dist/assets/bpmn-js.css" in urls
    resp = client.get(f"/static/{VIEWER}?v={urls[VIEWER]}", headers=GZIP)
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert "immutable" in resp.headers["Cache-Control"]
    body = gzip.decompress(resp.data)
    assert body.startswith(b"/*! bpmn-js - bpmn-navigated-viewer") and body == (STATIC / VIEWER).read_bytes()
    assert 'data-src="/cases/' + number + '/diagram"' in html and "流程图无法显示" in html  # the text fallback
    assert "vendor/bpmn-js" not in client.get("/").get_data(as_text=True)  # other pages stay light


def test_the_diagram_json_marks_done_current_cancelled_and_fired_steps(client, seeded, manual_clock):
    from engine import timers
    number = start(seeded, service="FX-DIBAO").case_number
    [intake] = ready_tasks(seeded, number)
    complete(seeded, intake.id, worker_for(seeded, intake), form_for(seeded, intake))
    [appraisal] = ready_tasks(seeded, number)
    login(client, CLERK)
    resp = client.get(f"/cases/{number}/diagram")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    data = resp.get_json()
    assert data["done"] == ["Task_VillageIntake"]
    assert data["current"] == [appraisal.bpmn_id] == ["Task_VillageAppraisal"]
    assert data["cancelled"] == [] and data["fired"] == [] and data["process_id"] == "FX-DIBAO"
    assert data["xml"].lstrip().startswith("<?xml") and 'id="Task_VillageAppraisal"' in data["xml"]
    assert 'bpmnElement="Task_VillageAppraisal"' in data["xml"]  # with its drawing (diagram interchange)
    assert {"private", "no-cache"} <= set(resp.headers["Cache-Control"].split(", "))  # not no-store: kept, revalidated
    etag = resp.headers["ETag"]
    assert client.get(f"/cases/{number}/diagram", headers={"If-None-Match": etag}).status_code == 304
    zipped = client.get(f"/cases/{number}/diagram", headers=GZIP)
    assert zipped.headers["Content-Encoding"] == "gzip" and len(zipped.data) < len(resp.data) / 3
    assert client.get(f"/cases/{number}/diagram", headers={**GZIP, "If-None-Match": zipped.headers["ETag"]}
                      ).status_code == 304

    complete(seeded, appraisal.id, worker_for(seeded, appraisal), form_for(seeded, appraisal))
    after = client.get(f"/cases/{number}/diagram", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag  # a step taken: a new validator
    assert after.get_json()["done"] == ["Task_VillageIntake", "Task_VillageAppraisal"]

    # a case whose intake ran past its 补正 limit: the warning and the withdrawal timers fired, the step cancelled
    late = start(seeded, service="FX-DIBAO").case_number
    timers.sweep(seeded, manual_clock.now() + timedelta(days=16))
    data = client.get(f"/cases/{late}/diagram").get_json()
    assert data["cancelled"] == ["Task_VillageIntake"] and data["current"] == [] and data["done"] == []
    assert data["fired"] == ["Timer_VillageIntake_Warn", "Timer_VillageIntake_Withdraw"]


def test_a_case_outside_ones_unit_has_no_diagram(app, client, seeded):
    number = start(seeded, service="FX-DIBAO").case_number
    login(client, OTHER_CLERK)
    assert client.get(f"/cases/{number}/diagram").status_code == 404
    assert client.get("/cases/YY-2026-999999/diagram").status_code == 404
    with db.read(seeded) as s:
        with pytest.raises(NotFound):
            queries.case_diagram(s, number, user(seeded, OTHER_CLERK))
        assert queries.case_diagram(s, number, user(seeded, COUNTY_MZ)).current == ("Task_VillageIntake",)
    anonymous = app.test_client()
    assert anonymous.get(f"/cases/{number}/diagram").status_code == 302  # to the login page


def _weight(client, path: str) -> tuple[int, dict[str, int]]:
    """Bytes on the wire of a page's first load, gzip-compressed: the HTML and every stylesheet, script
    and data file it names (the diagram's JSON too), each fetched through the test client."""
    page = client.get(path, headers=GZIP)
    assert page.status_code == 200, path
    assert page.headers.get("Content-Encoding") == "gzip", path
    html = gzip.decompress(page.data).decode()
    parts = {path: len(page.data)}
    refs = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) + re.findall(r'<script src="([^"]+)"', html)
    refs += re.findall(r'data-src="([^"]+)"', html)
    for ref in refs:
        resp = client.get(ref, headers=GZIP)
        assert resp.status_code == 200, ref
        parts[urlsplit(ref).path] = len(resp.data)
    return sum(parts.values()), parts


def test_the_login_home_and_case_pages_weigh_under_300_kb(client, seeded):
    _vendored()
    number = start(seeded, service="FX-DIBAO").case_number
    weights = {"/login": _weight(client, "/login")}
    login(client, CLERK)
    weights["/"] = _weight(client, "/")
    weights[f"/cases/{number}"] = _weight(client, f"/cases/{number}")
    for page, (total, parts) in weights.items():
        print(f"{page}: {total / 1024:.1f} KB gzip —", ", ".join(f"{p} {n / 1024:.1f}" for p, n in parts.items()))
        assert total < BUDGET, (page, parts)
    case_parts = weights[f"/cases/{number}"][1]  # the viewer and the diagram's data are counted in
    assert f"/static/{VIEWER}" in case_parts and f"/cases/{number}/diagram" in case_parts, case_parts

"""The review page through FastAPI's TestClient: auth, CSRF, headers, escaping, and decisions in the audit log."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from harness.review.store import Attempt, GeneratedRecord, GeneratedStore
from harness.server.web import COOKIE, Sessions, review_router
from harness.services import Services
from harness.settings import Settings

ORIGIN = "http://127.0.0.1:8123"
TOKEN = "t0ken-" + "x" * 40
GOOD = 'import json\nimport random\nfrom pathlib import Path\n\nTOP = 5\n\npick = random.random()\nPath("/output/a.json").write_text(json.dumps({"pick": pick, "top": TOP}))\n'  # noqa: E501
FIRST = GOOD.replace("import random\n", "import random\nimport subprocess\n")
HOSTILE_REQUEST = (
    "list files </script><script>alert(1)</script><img src=x onerror=alert(2)> \x1b]0;pwned\x07 \u202eevil"
)
HOSTILE_SCRIPT = (
    '# </script><script>alert("code")</script>\nprint("<b>bold</b> \x1b[2K\x1b[1Gfake line")\nx = 1  # \u202etxt.exe\n'
)


@pytest.fixture
def services() -> Iterator[Services]:
    with Services(Settings.from_env()) as opened:
        yield opened


def seed(
    store: GeneratedStore,
    script: str,
    *,
    request: str = "write a json file",
    earlier: str | None = None,
    created_at: str | None = None,
) -> GeneratedRecord:
    """A generated record as the generator leaves it: attempts kept, the last one's code as the script."""
    codes = {1: earlier, 2: script} if earlier is not None else {1: script}
    attempts = [
        Attempt(number=n, stage="generate" if n == 1 else "gate_repair", prompt_summary="p", response="r", tokens=100)
        for n in codes
    ]
    record = GeneratedRecord(
        id=store.new_id(),
        created_at=created_at or store.now(),
        request=request,
        strategy="generate_custom",
        model="claude-test",
        attempts=attempts,
        tokens={"input": 1200, "output": 300},
        gate_passed=True,
    )
    store.save(record, script, attempt_code={n: c for n, c in codes.items() if c is not None})
    return record


def client_for(services: Services, token: str | None, **kwargs: object) -> TestClient:
    sessions = Sessions(token, **kwargs)  # type: ignore[arg-type]
    app = FastAPI()
    app.include_router(review_router(lambda: services, sessions, reviewer="ada"))
    app.state.sessions = sessions
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_socket_mode_shows_the_queue_newest_first_and_the_finding_at_its_line(services: Services) -> None:
    # The store keeps times to the second: these two are set apart explicitly.
    older = seed(services.generated, GOOD, request="older request", created_at="2026-01-01T10:00:00+00:00")
    newer = seed(services.generated, GOOD, request="newer", earlier=FIRST, created_at="2026-01-01T10:00:01+00:00")
    client = client_for(services, None)
    queue = client.get("/review/")
    assert queue.status_code == 200
    assert queue.text.index(newer.id) < queue.text.index(older.id)
    page = client.get(f"/review/scripts/{newer.id}").text
    # random.random() is on line 7: bandit's B311 is shown right after that line.
    assert re.search(r'<tr class="finding info" data-line="7" data-code="HB311">', page)
    assert "gate passed" in page
    # Diff against the previous attempt: the subprocess import the repair removed.
    assert '<span class="d-del">-import subprocess</span>' in page
    assert "input 1200" in page and "claude-test" in page


def test_every_response_carries_the_security_headers(services: Services) -> None:
    record = seed(services.generated, GOOD)
    client = client_for(services, TOKEN)
    for response in (
        client.get("/review/"),  # refused: still with the headers
        client.get(f"/review/scripts/{record.id}", headers={"Authorization": f"Bearer {TOKEN}"}),
        client.get("/review/static/review.css"),
    ):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"


def test_tcp_needs_a_login_and_each_link_works_once(services: Services) -> None:
    client = client_for(services, TOKEN)
    assert client.get("/review/").status_code == 401
    code = client.app.state.sessions.issue_login_code()  # type: ignore[attr-defined]
    first = client.get(f"/review/login?code={code}")
    assert first.status_code == 303 and first.headers["location"] == "/review/"
    cookie = first.headers["set-cookie"]
    assert (
        cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    )
    assert client.get("/review/").status_code == 200  # the cookie signs this client in
    client.cookies.clear()
    assert client.get(f"/review/login?code={code}").status_code == 403  # used
    assert client.get("/review/").status_code == 401
    assert client.get("/review/login?code=made-up").status_code == 403
    assert client.get("/review/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/review/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_token_holder_gets_a_fresh_login_link(services: Services) -> None:
    client = client_for(services, TOKEN)
    assert client.post("/review/login-link").status_code == 401
    answer = client.post("/review/login-link", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    path = answer.json()["path"]
    assert path.startswith("/review/login?code=")
    assert client.get(path).status_code == 303
    assert client.post("/review/login-link").status_code == 401  # a cookie session is not the token holder


def test_an_expired_code_and_an_idle_session_are_refused(services: Services) -> None:
    now = [1000.0]
    client = client_for(services, TOKEN, code_ttl_s=60, idle_s=300, clock=lambda: now[0])
    sessions: Sessions = client.app.state.sessions  # type: ignore[attr-defined]
    late = sessions.issue_login_code()
    now[0] += 61
    assert client.get(f"/review/login?code={late}").status_code == 403
    fresh = sessions.issue_login_code()
    assert client.get(f"/review/login?code={fresh}").status_code == 303
    now[0] += 299
    assert client.get("/review/").status_code == 200
    now[0] += 301
    assert client.get("/review/").status_code == 401


def test_a_rebound_host_name_gets_nothing(services: Services) -> None:
    client = client_for(services, None)
    assert client.get("/review/", headers={"Host": "attacker.example:8123"}).status_code == 401
    assert client.get("/review/", headers={"Host": "localhost:8123"}).status_code == 200


def test_posts_need_the_csrf_token_and_this_origin(services: Services) -> None:
    record = seed(services.generated, GOOD)
    client = client_for(services, None)
    page = client.get(f"/review/scripts/{record.id}").text
    digest = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
    assert digest
    form = {"sha256": digest.group(1), "hosts": "api.example.com", "reason": "fine"}
    url = f"/review/scripts/{record.id}/approve"
    assert client.post(url, data=form, headers={"Origin": ORIGIN}).status_code == 403
    assert client.post(url, data={**form, "csrf": "forged"}, headers={"Origin": ORIGIN}).status_code == 403
    other = client.post(url, data={**form, "csrf": csrf_of(page)}, headers={"Origin": "http://evil.example"})
    assert other.status_code == 403
    referer = client.post(url, data={**form, "csrf": csrf_of(page)}, headers={"Referer": "http://evil.example/x"})
    assert referer.status_code == 403
    assert services.generated.trust.entries() == []  # nothing of the refused posts reached the audit log
    done = client.post(url, data={**form, "csrf": csrf_of(page)}, headers={"Origin": ORIGIN})
    assert done.status_code == 303 and done.headers["location"] == f"/review/scripts/{record.id}?done=approved"
    [entry] = services.generated.audit_entries()
    assert entry["action"] == "approved" and entry["granted_hosts"] == ["api.example.com"]
    assert entry["note"] == "fine" and entry["reviewer"] == "ada"


def test_approval_binds_the_bytes_shown(services: Services) -> None:
    record = seed(services.generated, GOOD)
    client = client_for(services, None)
    page = client.get(f"/review/scripts/{record.id}").text
    # The script changes on disk after the reviewer loaded the page.
    (services.generated.folder(record.id) / "script.py").write_text(GOOD + "import os\n")
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
    assert sha
    answer = client.post(
        f"/review/scripts/{record.id}/approve",
        data={"csrf": csrf_of(page), "sha256": sha.group(1), "reason": "ok"},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 403 and "is not the one reviewed" in answer.text
    assert services.generated.trust.entries() == []


def test_reject_needs_a_reason_and_promote_uses_the_confirmed_parameters(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(tmp_path / "scaffolds"))
    (tmp_path / "scaffolds").mkdir()
    with Services(Settings.from_env()) as opened:
        record = seed(opened.generated, GOOD)
        client = client_for(opened, None)
        page = client.get(f"/review/scripts/{record.id}").text
        token = csrf_of(page)
        headers = {"Origin": ORIGIN}
        empty = client.post(f"/review/scripts/{record.id}/reject", data={"csrf": token}, headers=headers)
        assert empty.status_code == 422 and "needs a reason" in empty.text
        sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
        assert sha
        form = {"csrf": token, "sha256": sha.group(1), "reason": "ok"}
        assert client.post(f"/review/scripts/{record.id}/approve", data=form, headers=headers).status_code == 303
        approved = client.get(f"/review/scripts/{record.id}").text
        assert 'name="param" value="TOP"' in approved
        promoted = client.post(
            f"/review/scripts/{record.id}/promote",
            data={"csrf": token, "name": "json_pick", "param": "TOP"},
            headers=headers,
        )
        assert promoted.status_code == 303
        toml = (tmp_path / "scaffolds" / "json_pick" / "scaffold.toml").read_text()
        assert "[parameters.top]" in toml
        assert [e["action"] for e in opened.generated.audit_entries()] == ["approved", "promoted"]
        again = client.post(f"/review/scripts/{record.id}/reject", data={"csrf": token, "reason": "x"}, headers=headers)
        assert again.status_code == 409


def test_hostile_text_is_escaped_and_made_visible(services: Services) -> None:
    record = seed(services.generated, HOSTILE_SCRIPT, request=HOSTILE_REQUEST)
    folder = services.runs.create("0123456789ab")
    events = [
        {"v": 1, "seq": 1, "t": 0.1, "kind": "log", "level": "info", "message": "<img src=x onerror=alert(3)>\x1b[31m"},
    ]
    (folder.path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    folder.output.mkdir()
    (folder.output / "<i>x<i>\x1b[2K.txt").write_text("hi")
    egress = [{"host": "<i>api.example.com\x1b[8m", "requests": 3, "bytes_in": 2048, "bytes_out": 99, "refused": 1}]
    folder.write_text("report.json", json.dumps({"execution_result": {"status": "succeeded"}, "egress": egress}))
    services.generated.record_run(record.id, folder.run_id, "succeeded", 1)
    services.generated.record_run(record.id, "fedcba987654", "failed", 1)  # its folder is gone
    client = client_for(services, None)
    for html in (client.get("/review/").text, client.get(f"/review/scripts/{record.id}").text):
        assert (
            "<script>" not in html
            and "<img" not in html
            and "<i>" not in html
            and "\x1b" not in html
            and "\u202e" not in html
        )
        assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html
        assert "\\x1b]0;pwned\\x07" in html and "\\u202eevil" in html
    page = client.get(f"/review/scripts/{record.id}").text
    assert "\\x1b[2K\\x1b[1Gfake line" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;i&gt;x&lt;i&gt;\\x1b[2K.txt" in page
    assert "&lt;img src=x onerror=alert(3)&gt;\\u001b[31m" in page  # JSON escapes it first
    egress_row = re.search(r"<tr><td>([^<]*)</td><td>3</td><td>2048</td><td>99</td><td>1</td></tr>", page)
    assert egress_row and egress_row.group(1) == "&lt;i&gt;api.example.com\\x1b[8m"
    assert "no run fedcba987654" in page


def test_the_diff_against_the_base_scaffold(services: Services) -> None:
    from harness.generation.render import render, validate_params

    scaffold = services.library.get("csv_summary")
    base = render(scaffold, validate_params(scaffold, scaffold.examples[0].params))
    script = base + "\nprint('one more line')\n"
    record = seed(services.generated, script)
    services.generated.save(record.model_copy(update={"strategy": "hybrid", "base_scaffold": "csv_summary"}))
    page = client_for(services, None).get(f"/review/scripts/{record.id}").text
    diff = page[page.index('id="diff-scaffold"') :]
    assert "--- scaffold/csv_summary" in diff
    assert '<span class="d-add">+print(&#39;one more line&#39;)</span>' in diff
    assert diff.count('class="d-add"') == 2 and 'class="d-del"' not in diff[: diff.index("</pre>")]

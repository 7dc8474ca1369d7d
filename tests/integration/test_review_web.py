"""The review page in a real headless Chromium (Debian's package, driven by Playwright) against a real server.

A script is generated through the fake Messages API and run in a real container, then reviewed
in the browser: the queue, the script with its finding at the right line, an approval with a
host and a reason that lands in the audit log. Hostile text renders inert; a POST without the
CSRF token is refused; over TCP nothing is shown before the one-time login link, which works once.
Set HARNESS_SCREENSHOT=docs/review-page.png to save the script page as the README's picture.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serverkit import Server, start_server

from harness.review.store import GeneratedRecord
from harness.services import Services
from harness.settings import Settings
from harness.testing import FakeAnthropic, Reply

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Read at import: the test-wide fixture clears HARNESS_* from the environment before each test.
SCREENSHOT = os.environ.get("HARNESS_SCREENSHOT")
REQUEST = "pick a random number and write it with the top count to a json file"
GOOD = """import json
import random
from pathlib import Path

TOP = 5

pick = random.random()
Path("/output/pick.json").write_text(json.dumps({"pick": pick, "top": TOP}))
print("wrote pick.json")
"""
FIRST = GOOD.replace("import random\n", "import random\nimport subprocess\n")
HOSTILE_REQUEST = (
    "list files </script><script>alert(1)</script><img src=x onerror=alert(2)> \x1b]0;pwned\x07 \u202eevil"
)
HOSTILE_SCRIPT = (
    '# </script><script>alert("code")</script><svg onload=alert(4)>\n'
    'print("<b>bold</b> \\x1b[2K", "\x1b[2K\x1b[1Gfake line")\n'
    "x = 1  # \u202etxt.exe\n"
)


@dataclass
class Review:
    """A real ``harness serve --listen`` (its process) and this test's own view of the same stores."""

    server: Server
    services: Services

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def printed_link(self) -> str:
        """The one-time login link the server printed when it started."""
        found = [line.split("review page ", 1)[1].split()[0] for line in self.server.stderr if "review page " in line]
        assert found, "harness serve printed no login link:\n" + "\n".join(self.server.stderr)
        return found[0]

    def login_link(self) -> str:
        """A fresh one-time link, asked for with the bearer token as a program would."""
        reply = self.server.request("POST", "/review/login-link")
        assert reply.status == 200, reply.body
        return f"{self.url}{reply.json()['path']}"


@pytest.fixture(scope="module")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium when run as root")
    return CHROMIUM


@pytest.fixture
def review(sandbox_image: str) -> Iterator[Review]:
    """``harness serve --listen 127.0.0.1:0`` on this test's data and generated folders; stopped after it."""
    srv = start_server(Path(os.environ["HARNESS_DATA_DIR"]), listen=True, env={"HARNESS_POOL_SIZE": "0"})
    try:
        with Services(Settings.from_env()) as services:
            yield Review(srv, services)
    finally:
        assert srv.stop() == 0, "\n".join(srv.stderr)


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A function opening fresh browser contexts (each its own user-data-dir, so its own cookies)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        contexts: list[Any] = []

        def open_context() -> Any:
            profile = tmp_path / f"profile-{len(contexts)}"
            context = p.chromium.launch_persistent_context(
                str(profile), executable_path=chromium, headless=True, args=FLAGS
            )
            contexts.append(context)
            return context

        try:
            yield open_context
        finally:
            for context in contexts:
                context.close()


def generate(cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A script generated through the fake LLM (one gate repair), run once in a real container; its id."""
    from harness.generation.scaffolds import scaffolds_root

    library = tmp_path / "scaffolds"
    library.mkdir()
    shutil.copytree(scaffolds_root() / "csv_summary", library / "csv_summary")
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    replies = [
        Reply.tool_use("write_script", {"code": FIRST, "explanation": "picks a number"}),
        Reply.tool_use("write_script", {"code": GOOD, "explanation": "picks a number, without subprocess"}),
    ]
    with FakeAnthropic(replies) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        code, out, err = cli("run", REQUEST, "--strategy", "generate_custom", "--json", "--yes")
        assert code == 0, err
        assert len(fake.requests) == 2
    report = json.loads(out)
    assert report["execution_result"]["status"] == "succeeded"
    return str(report["generation"]["id"])


@pytest.mark.llm
def test_review_a_generated_script_in_the_browser(
    cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox_image: str,
    review: Review,
    browser: Callable[[], Any],
) -> None:
    record_id = generate(cli, monkeypatch, tmp_path)
    srv, services = review, review.services
    page = browser().new_page()
    page.goto(srv.login_link())
    assert page.url == f"{srv.url}/review/"
    row = page.locator(f'tr.item[data-id="{record_id}"]')
    assert row.count() == 1 and "pending review" in row.inner_text()
    row.locator("a.open").click()
    page.wait_for_url(f"{srv.url}/review/scripts/{record_id}")

    # random.random() is line 7 of the script; bandit's B311 is shown right under it.
    assert page.locator("#L7 td.src").inner_text() == "pick = random.random()"
    finding = page.locator("#L7 + tr.finding")
    assert finding.get_attribute("data-code") == "HB311"
    assert "Standard pseudo-random generators" in finding.inner_text()
    assert page.locator("tr.finding").count() == 1
    # What the page says about how it came to be: the repair, the diff, the run and its output.
    assert "-import subprocess" in page.locator("#diff-previous").inner_text()
    assert page.locator("#attempts tbody tr").count() == 2
    run = page.locator("section.run")
    assert run.count() == 1 and "succeeded" in run.locator("h3").inner_text()
    assert "pick.json" in (run.locator("ul.outputs").text_content() or "")
    assert page.locator("#model").inner_text() != ""
    if SCREENSHOT:
        page.screenshot(path=str(Path(SCREENSHOT).absolute()), full_page=True)

    form = page.locator("form#approve")
    form.locator('input[name="hosts"]').fill("api.example.com")
    form.locator('input[name="reason"]').fill("reads nothing, writes one small file")
    form.locator('input[name="reviewer"]').fill("ada")
    form.locator('button[type="submit"]').click()
    page.wait_for_url(f"{srv.url}/review/scripts/{record_id}?done=approved")
    assert page.locator("#status").inner_text() == "approved"
    assert page.locator("#granted").inner_text() == "api.example.com"

    entries = services.generated.audit_entries()
    assert [(e["action"], e["record_id"]) for e in entries] == [("approved", record_id)]
    [entry] = entries
    assert entry["granted_hosts"] == ["api.example.com"] and entry["reviewer"] == "ada"
    assert entry["note"] == "reads nothing, writes one small file"
    assert entry["sha256"] == page.locator("#sha256").inner_text()
    assert services.generated.trust.current(record_id) is not None  # the trust store verifies it


def seed_hostile(services: Services) -> GeneratedRecord:
    """A pending script whose request, code, events and output names carry HTML, script ends and escapes."""
    store = services.generated
    record = GeneratedRecord(
        id=store.new_id(),
        created_at=store.now(),
        request=HOSTILE_REQUEST,
        strategy="generate_custom",
        model="claude-test",
        explanation="</textarea><iframe src=/review/></iframe>",
    )
    store.save(record, HOSTILE_SCRIPT, attempt_code={1: HOSTILE_SCRIPT})
    folder = services.runs.create("0123456789ab")
    event = {
        "v": 1,
        "seq": 1,
        "t": 0.1,
        "kind": "log",
        "level": "info",
        "message": "</script><img src=x onerror=alert(5)>",
    }
    (folder.path / "events.jsonl").write_text(json.dumps(event) + "\n")
    folder.output.mkdir()
    (folder.output / "<img src=x onerror=alert(6)>\x1b]0;t\x07.txt").write_text("x")
    store.record_run(record.id, folder.run_id, "succeeded", 1)
    return record


def test_hostile_text_renders_inert(review: Review, browser: Callable[[], Any]) -> None:
    record = seed_hostile(review.services)
    page = browser().new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(review.login_link())
    for url in (f"{review.url}/review/", f"{review.url}/review/scripts/{record.id}"):
        page.goto(url)
        # Nothing from the script became an element: no script, image, svg, iframe or textarea.
        for tag in ("script", "img", "svg", "iframe", "textarea", "b"):
            assert page.locator(tag).count() == 0, tag
        assert page.title().endswith("harness review")
        text = page.locator("main").inner_text()
        assert "</script><script>alert(1)</script><img src=x onerror=alert(2)>" in text
        assert "\\x1b]0;pwned\\x07" in text and "\\u202eevil" in text and "\x1b" not in text
    code = page.locator("#code").inner_text()
    assert '# </script><script>alert("code")</script><svg onload=alert(4)>' in code
    assert "\\x1b[2K\\x1b[1Gfake line" in code and "\\u202etxt.exe" in code
    run = page.locator("section.run")
    run.locator("details summary").first.click()
    assert "<img src=x onerror=alert(6)>\\x1b]0;t\\x07.txt" in run.locator("ul.outputs").inner_text()
    run.locator("details.events summary").click()
    assert "</script><img src=x onerror=alert(5)>" in run.locator("table.events").inner_text()
    assert dialogs == []


def test_a_post_without_the_csrf_token_is_refused(review: Review, browser: Callable[[], Any]) -> None:
    record = seed_hostile(review.services)
    context = browser()
    page = context.new_page()
    page.goto(review.login_link())
    page.goto(f"{review.url}/review/scripts/{record.id}")
    token = page.locator('form#approve input[name="csrf"]').get_attribute("value")
    sha = page.locator('form#approve input[name="sha256"]').get_attribute("value")
    url = f"{review.url}/review/scripts/{record.id}/approve"
    origin = {"Origin": review.url}
    # The browser's own cookie goes with these: only the token (or the origin) is missing.
    missing = context.request.post(url, form={"sha256": sha, "reason": "x"}, headers=origin, max_redirects=0)
    assert missing.status == 403 and "CSRF" in missing.text()
    forged = context.request.post(url, form={"csrf": "x" * 43, "sha256": sha}, headers=origin, max_redirects=0)
    assert forged.status == 403
    elsewhere = context.request.post(
        url, form={"csrf": token, "sha256": sha}, headers={"Origin": "http://evil.example"}, max_redirects=0
    )
    assert elsewhere.status == 403
    assert review.services.generated.trust.entries() == []
    accepted = context.request.post(url, form={"csrf": token, "sha256": sha}, headers=origin, max_redirects=0)
    assert accepted.status == 303
    assert [e["action"] for e in review.services.generated.audit_entries()] == ["approved"]


def test_tcp_shows_nothing_before_login_and_the_printed_link_works_once(
    review: Review, browser: Callable[[], Any]
) -> None:
    seed_hostile(review.services)
    link = review.printed_link()
    stranger = browser().new_page()
    answer = stranger.goto(f"{review.url}/review/")
    assert answer is not None and answer.status == 401
    assert stranger.locator("#queue").count() == 0 and "Sign in first" in stranger.content()
    first = browser().new_page()
    answer = first.goto(link)
    assert answer is not None and answer.status == 200 and first.url == f"{review.url}/review/"
    assert first.locator("#queue tr.item").count() == 1
    cookie = next(c for c in first.context.cookies() if c["name"] == "harness_review")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    # The cookie opens the review page only: the API still wants the bearer token.
    assert first.context.request.get(f"{review.url}/v1/review").status == 401
    assert review.server.request("GET", "/v1/review").status == 200
    second = browser().new_page()
    answer = second.goto(link)
    assert answer is not None and answer.status == 403
    assert "works once" in second.locator("#message").inner_text()
    answer = second.goto(f"{review.url}/review/")
    assert answer is not None and answer.status == 401


def test_the_unix_socket_needs_no_login(sandbox_image: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="hw-"))  # short: a socket path must fit in 108 bytes
    srv = start_server(base / "data", env={"HARNESS_POOL_SIZE": "0"})
    try:
        assert not any("review page" in line for line in srv.stderr)  # no link: nothing to sign in to
        page = srv.request("GET", "/review/")
        assert page.status == 200 and b'id="empty"' in page.body
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # The socket's own session still needs its CSRF token for a decision.
        refused = srv.request(
            "POST",
            "/review/scripts/g-0123456789ab/reject",
            raw=b"reason=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert refused.status == 403 and b"CSRF" in refused.body
    finally:
        assert srv.stop() == 0, "\n".join(srv.stderr)
        shutil.rmtree(base, ignore_errors=True)

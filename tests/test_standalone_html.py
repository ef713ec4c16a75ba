"""The standalone replay file: from disk in Chromium it replays, and nothing recorded runs."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from bench.harness import CHROMIUM_ARGS
from conversations import exports
from tests.conftest import require
from tests.test_browser import ARTIFACTS
from tests.test_exports import INJECTION, recorded_conversation, with_notes

pytestmark = pytest.mark.django_db


@contextmanager
def chromium_page() -> Iterator:
    """A Chromium page; start it only after the database work (Playwright runs a loop)."""
    chromium = shutil.which("chromium")
    require(chromium is not None, "chromium is not installed")
    bundle = Path(settings.BASE_DIR) / "static" / "dist" / "standalone.js"
    require(bundle.exists(), "the front-end bundle is not built (npm run build)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def write_html(conversation, tmp_path: Path) -> Path:
    path = tmp_path / "replay.html"
    path.write_bytes(b"".join(exports.standalone_html_chunks(conversation)))
    return path


def expect_replayed_text(page, text: str) -> None:
    """Wait until the replayed page shows `text` (the replayer builds it asynchronously)."""
    from playwright.sync_api import expect

    body = page.frame_locator(".replayer-wrapper iframe").locator("body")
    expect(body).to_contain_text(text, timeout=15_000)


def test_standalone_file_replays_the_recording_offline_with_its_transcript(tmp_path):
    conversation = recorded_conversation(body="Does it come in red?")
    path = write_html(conversation, tmp_path)
    with chromium_page() as page:
        check_replays_offline(page, path)


def check_replays_offline(page, path: Path) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(path.as_uri())
    page.wait_for_selector("html[data-replay=ready]", timeout=10_000)

    expect_replayed_text(page, "Blue kettle, 39 EUR")
    transcript = page.locator("ol.transcript").inner_text()
    assert "Does it come in red? (EU plug)" in transcript
    assert "Yes, 12 left." in transcript
    assert errors == []
    assert [
        url for url in requests if not url.startswith(("file:", "data:", "blob:", "about:"))
    ] == []


def test_notes_are_listed_pinned_on_the_progress_bar_and_play_from_their_moment(tmp_path):
    conversation = with_notes()
    length = conversation.recording_end_ms - conversation.recording_start_ms
    path = write_html(conversation, tmp_path)
    with chromium_page() as page:
        check_notes(page, path, length)


def check_notes(page, path: Path, length: int) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-replay=ready]", timeout=10_000)

    notes = page.locator("ol.notes").inner_text()
    assert "0:01 lee\n\nCustomer hesitates over the plug type" in notes
    assert INJECTION in notes  # shown as the note's text, not run
    # The note past the recording's end is listed but has no place on the bar.
    markers = page.locator(".rr-progress .note-marker")
    assert markers.count() == 2
    assert markers.nth(1).get_attribute("title") == f"0:02 · sam: {INJECTION}"
    bar = page.locator(".rr-progress").bounding_box()
    pin = markers.nth(0).bounding_box()
    expected = bar["x"] + bar["width"] * 1_500 / length
    assert abs(pin["x"] + pin["width"] / 2 - expected) < 2

    page.evaluate("window.replayPlayer.pause()")
    markers.nth(0).click()
    assert 1_500 <= page.evaluate("window.replayPlayer.getReplayer().getCurrentTime()") < 2_000
    page.evaluate("window.replayPlayer.pause()")
    page.locator("ol.notes > li", has_text="sam").click()
    assert 2_000 <= page.evaluate("window.replayPlayer.getReplayer().getCurrentTime()") < 2_500
    assert page.evaluate("window.pwned") is None
    assert errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "standalone-notes.png"), full_page=True)


def test_replayer_iframe_is_sandboxed_without_scripts(tmp_path):
    path = write_html(recorded_conversation(), tmp_path)
    with chromium_page() as page:
        check_sandboxed(page, path)


def check_sandboxed(page, path: Path) -> None:
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-replay=ready]", timeout=10_000)
    sandbox = page.locator(".replayer-wrapper iframe").get_attribute("sandbox")
    assert sandbox is not None
    assert "allow-scripts" not in sandbox


def test_script_in_a_message_or_a_recorded_page_neither_breaks_out_nor_runs(tmp_path):
    conversation = recorded_conversation(body=INJECTION, page_text=INJECTION)
    path = write_html(conversation, tmp_path)
    with chromium_page() as page:
        check_inert(page, path)


def check_inert(page, path: Path) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(path.as_uri())
    page.wait_for_selector("html[data-replay=ready]", timeout=10_000)

    assert page.evaluate("window.pwned") is None
    assert page.locator("script").count() == 2  # the data block and the player, nothing else
    assert INJECTION in page.locator("ol.transcript").inner_text()
    expect_replayed_text(page, "window.pwned=1")  # shown as the page's text, not run
    frame = page.frames[-1]
    assert frame.evaluate("window.pwned") is None
    assert dialogs == []

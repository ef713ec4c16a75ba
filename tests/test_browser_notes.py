"""Notes pinned to a moment, tags, links to a moment and the shortcuts overlay, in Chromium."""

import re

import pytest
from playwright.sync_api import expect

from conversations.imports import CREATED, archive_import
from conversations.models import Conversation, ConversationNote
from conversations.retention import conversation_delete
from tests import factories as f
from tests import test_browser
from tests.test_browser import (
    ARTIFACTS,
    _player_ms,
    _wait_for_first_frame,
    _wait_for_player_at,
    in_thread,
    open_page,
    seed_conversation,
)

pytestmark = pytest.mark.django_db(transaction=True)

browser = test_browser.browser  # the one Chromium the other browser tests share

# seed_conversation's recording runs from T0 to T0 + 29.95 s: a kettle page, then checkout.
END = f.T0 + 29_950


def open_replay(browser, server: str, client, uuid: str, query: str = "", *, viewport=(1440, 900)):
    page = open_page(browser, server, client, viewport=viewport)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"http://{server}/conversations/{uuid}/{query}")
    _wait_for_first_frame(page)
    return page


def go_to(page, ts: int) -> None:
    """Stand still at `ts`: a live page plays on from where it is sent, so it is paused."""
    page.evaluate("(ts) => replaySeek(ts, false)", ts)
    _wait_for_player_at(page, ts, tolerance=5)


def add_note(page, ts: int, text: str) -> None:
    """Write a note as staff do: go to the moment, press n, type, Enter."""
    go_to(page, ts)
    page.keyboard.press("n")
    expect(page.locator("#note-text")).to_be_focused()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    expect(page.locator("#note-list li.note", has_text=text)).to_be_visible()
    expect(page.locator("#note-text")).to_have_value("")
    expect(page.locator("#note-text")).not_to_be_focused()  # keys are shortcuts again


def marker_fraction(page, selector: str) -> float:
    """Where a marker's centre sits along the progress bar, from 0 to 1, as drawn."""
    expect(page.locator(selector)).to_be_visible()  # drawn once the recording's span is known
    track = page.locator("#track").bounding_box()
    marker = page.locator(selector).bounding_box()
    return (marker["x"] + marker["width"] / 2 - track["x"]) / track["width"]


def stage_text(page) -> str:
    return page.frame_locator("#stage iframe").locator("body").inner_text()


@pytest.fixture
def exporter_session(client, role_user):
    client.force_login(role_user("exporter"))
    return client


@pytest.fixture
def viewer_session(client, role_user):
    client.force_login(role_user("viewer"))
    return client


def test_a_note_at_a_moment_is_a_marker_on_the_bar_and_a_line_beside_the_transcript(
    browser, daphne_server, exporter_session
):
    uuid = seed_conversation()
    page = open_replay(browser, daphne_server, exporter_session, uuid)

    add_note(page, f.T0 + 12_000, "Hesitates over the plug type")

    note = page.locator("#note-list li.note")
    expect(note).to_have_count(1)
    expect(note.locator("time")).to_have_text("0:12")
    expect(note).to_contain_text("exporter")
    expect(page.locator("#note-count")).to_have_text("1")
    marker = page.locator("#track-notes .note-marker")
    expect(marker).to_have_count(1)
    assert abs(marker_fraction(page, "#track-notes .note-marker") - 12_000 / (END - f.T0)) < 0.01
    stored = in_thread(lambda: list(ConversationNote.objects.values_list("offset_ms", "text")))
    assert stored == [(12_000, "Hesitates over the plug type")]

    # The marker takes the player to the note's moment, not to where the mouse hit the bar.
    go_to(page, f.T0 + 2_000)
    marker.click()
    _wait_for_player_at(page, f.T0 + 12_000, tolerance=50)
    expect(page.locator("#current-time")).to_have_text("0:12")

    # So does the note in the list, from the other page of the visit.
    go_to(page, f.T0 + 25_000)
    assert "Checkout" in stage_text(page)
    note.click()
    _wait_for_player_at(page, f.T0 + 12_000, tolerance=50)
    assert "Blue kettle" in stage_text(page)

    # And it is stored: a reload shows it again.
    page.reload()
    _wait_for_first_frame(page)
    expect(page.locator("#note-list li.note time")).to_have_text("0:12")
    expect(page.locator("#track-notes .note-marker")).to_have_count(1)
    assert page.errors == []


def test_a_note_survives_an_archive_export_and_import_at_the_same_moment(
    browser, daphne_server, exporter_session, tmp_path
):
    uuid = seed_conversation()
    page = open_replay(browser, daphne_server, exporter_session, uuid)
    add_note(page, f.T0 + 21_500, "Asks for a coupon at checkout")

    page.locator(".exports summary").click()
    with page.expect_download() as download:
        page.locator(".exports button", has_text="Archive (.zip)").click()
    archive = tmp_path / "archive.json"
    download.value.save_as(archive)
    page.close()

    def reimport() -> str:
        conversation_delete(conversation=Conversation.objects.get(uuid=uuid))
        assert not Conversation.objects.exists() and not ConversationNote.objects.exists()
        return archive_import(archive.read_bytes()).status

    assert in_thread(reimport) == CREATED

    page = open_replay(browser, daphne_server, exporter_session, uuid)
    note = page.locator("#note-list li.note")
    expect(note).to_have_count(1)
    expect(note.locator("time")).to_have_text("0:21")
    expect(note).to_contain_text("Asks for a coupon at checkout")
    assert abs(marker_fraction(page, "#track-notes .note-marker") - 21_500 / (END - f.T0)) < 0.01
    page.locator("#track-notes .note-marker").click()
    _wait_for_player_at(page, f.T0 + 21_500, tolerance=50)
    assert "Checkout" in stage_text(page)


def test_a_link_with_t_opens_the_replay_at_that_moment(browser, daphne_server, exporter_session):
    uuid = seed_conversation()
    page = open_replay(browser, daphne_server, exporter_session, uuid, "?t=23.5")

    _wait_for_player_at(page, f.T0 + 23_500, tolerance=50)
    expect(page.locator("#current-time")).to_have_text("0:23")
    assert "Checkout: 2 items" in stage_text(page)
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")

    # A moment past the end opens at the end; a malformed one at the start.
    page.goto(f"http://{daphne_server}/conversations/{uuid}/?t=9999")
    _wait_for_first_frame(page)
    _wait_for_player_at(page, END, tolerance=50)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/?t=soon")
    _wait_for_first_frame(page)
    _wait_for_player_at(page, f.T0, tolerance=50)


def test_copy_link_puts_a_link_to_this_moment_on_the_clipboard_and_says_so(
    browser, daphne_server, exporter_session
):
    uuid = seed_conversation()
    page = open_replay(browser, daphne_server, exporter_session, uuid)
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=f"http://{daphne_server}"
    )
    go_to(page, f.T0 + 7_300)

    page.locator("#copy-link").click()

    expect(page.locator("#copy-status")).to_have_text("Link to 0:07 copied")
    link = page.evaluate("() => navigator.clipboard.readText()")
    assert link == f"http://{daphne_server}/conversations/{uuid}/?t=7.3"

    # The link opens the replay where it was copied.
    other = open_replay(browser, daphne_server, exporter_session, uuid, "?t=7.3")
    _wait_for_player_at(other, f.T0 + 7_300, tolerance=50)

    # `l` copies too, at the moment the player is at then.
    go_to(page, f.T0 + 26_000)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("l")
    expect(page.locator("#copy-status")).to_have_text("Link to 0:26 copied")
    assert page.evaluate("() => navigator.clipboard.readText()").endswith("?t=26")


def test_question_mark_opens_the_shortcuts_and_escape_closes_them(
    browser, daphne_server, exporter_session
):
    page = open_replay(browser, daphne_server, exporter_session, seed_conversation())
    overlay = page.locator("#shortcuts")
    expect(overlay).to_be_hidden()

    page.keyboard.press("?")

    expect(overlay).to_be_visible()
    for line in ["Play or pause", "Back or forward 5 seconds", "Write a note at this moment"]:
        expect(overlay).to_contain_text(line)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "replay-shortcuts.png"))
    # What is behind the overlay does not react to keys while it is open.
    at = _player_ms(page)
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")
    assert _player_ms(page) == at

    page.keyboard.press("Escape")
    expect(overlay).to_be_hidden()
    page.keyboard.press("ArrowRight")
    _wait_for_player_at(page, at + 5_000)

    page.locator("#shortcuts-open").click()
    expect(overlay).to_be_visible()
    page.keyboard.press("?")
    expect(overlay).to_be_hidden()


def test_a_viewer_sees_notes_and_tags_but_no_way_to_change_them(
    browser, daphne_server, viewer_session
):
    uuid = seed_conversation()

    def annotate() -> None:
        conversation = Conversation.objects.get(uuid=uuid)
        conversation.tags = "refund"
        conversation.save(update_fields=["tags"])
        ConversationNote.objects.create(
            conversation=conversation, author_name="lee", offset_ms=3_000, text="Look here"
        )

    in_thread(annotate)
    page = open_replay(browser, daphne_server, viewer_session, uuid)

    expect(page.locator("#note-list li.note")).to_contain_text("Look here")
    expect(page.locator("#tags")).to_contain_text("refund")
    for control in ["#note-form", "#tag-form", ".note-delete", ".tag-remove"]:
        expect(page.locator(control)).to_have_count(0)
    page.keyboard.press("n")
    expect(page.locator("#note-text")).to_have_count(0)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).not_to_contain_text("Write a note")


def test_tags_added_on_the_replay_page_filter_the_list(browser, daphne_server, exporter_session):
    tagged = seed_conversation()
    seed_conversation()  # never tagged
    page = open_replay(browser, daphne_server, exporter_session, tagged)

    page.locator("#tag-input").fill("Refund")
    page.keyboard.press("Enter")
    page.locator("#tag-input").fill("vip")
    page.keyboard.press("Enter")
    expect(page.locator("#tags li.tag")).to_have_text(["refund×", "vip×"])

    page.goto(f"http://{daphne_server}/")
    rows = page.locator("table.conversations tbody tr")
    expect(rows).to_have_count(2)
    tagged_row = rows.filter(has=page.locator(f"a[href='/conversations/{tagged}/']"))
    expect(tagged_row.locator(".tag")).to_have_text(["refund", "vip"])

    tagged_row.locator(".tag", has_text="refund").click()
    page.wait_for_url(re.compile(r"\?tag=refund$"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator(f"a[href='/conversations/{tagged}/']")).to_have_count(1)
    expect(page.locator("input[name=tag]")).to_have_value("refund")
    page.screenshot(path=str(ARTIFACTS / "list-tag-filter.png"), full_page=True)

    # Removed on the replay page, the tag no longer finds it.
    page.goto(f"http://{daphne_server}/conversations/{tagged}/")
    page.locator("#tags li.tag", has_text="refund").locator(".tag-remove").click()
    expect(page.locator("#tags li.tag")).to_have_text(["vip×"])
    page.goto(f"http://{daphne_server}/?tag=refund")
    expect(page.locator("table.conversations tbody")).to_contain_text("No conversations match")


@pytest.mark.parametrize("viewport", [(1440, 900), (1280, 720)])
def test_screenshot_of_the_replay_page_with_notes_and_tags(
    browser, daphne_server, exporter_session, viewport
):
    uuid = seed_conversation()
    page = open_replay(browser, daphne_server, exporter_session, uuid, viewport=viewport)
    for tag in ["refund", "plug type", "vip"]:
        page.locator("#tag-input").fill(tag)
        page.keyboard.press("Enter")
        expect(page.locator("#tags li.tag", has_text=tag)).to_be_visible()
    page.keyboard.press("Escape")  # out of the tag field: keys are shortcuts again
    expect(page.locator("#tag-input")).not_to_be_focused()
    add_note(page, f.T0 + 4_000, "Looks at the kettle's plug for a while")
    add_note(page, f.T0 + 21_500, "Asks for a coupon; we gave WELCOME10 — check the refund policy")
    add_note(page, f.T0 + 27_000, "Order placed")
    go_to(page, f.T0 + 22_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"replay-notes-{viewport[0]}x{viewport[1]}.png"))
    # Nothing the notes and tags add pushes the transcript off the screen.
    transcript = page.locator("#transcript").bounding_box()
    assert transcript["height"] > 150
    assert transcript["y"] + transcript["height"] <= viewport[1]
    assert page.errors == []


def test_the_author_deletes_a_note_from_the_list_and_its_marker_goes_too(
    browser, daphne_server, exporter_session
):
    uuid = seed_conversation()
    page = open_replay(browser, daphne_server, exporter_session, uuid)
    add_note(page, f.T0 + 3_000, "Keep this one")
    add_note(page, f.T0 + 15_000, "Written by mistake")
    expect(page.locator("#track-notes .note-marker")).to_have_count(2)

    mistake = page.locator("#note-list li.note", has_text="Written by mistake")
    mistake.locator(".note-delete").click()

    expect(page.locator("#note-list li.note")).to_have_text([re.compile("Keep this one")])
    expect(page.locator("#track-notes .note-marker")).to_have_count(1)
    expect(page.locator("#note-count")).to_have_text("1")
    page.reload()
    _wait_for_first_frame(page)
    expect(page.locator("#note-list li.note")).to_have_text([re.compile("Keep this one")])


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "open"])
def test_a_note_or_tag_another_writes_appears_on_a_page_already_open(
    browser, daphne_server, exporter_session, role_user, closed
):
    from django.test import Client

    uuid = seed_conversation(closed=closed)
    viewer = Client()
    viewer.force_login(role_user("viewer"))
    watching = open_replay(browser, daphne_server, viewer, uuid)
    writing = open_replay(browser, daphne_server, exporter_session, uuid)
    watching.wait_for_function("() => document.querySelector('#note-count').textContent === '0'")

    add_note(writing, f.T0 + 12_000, "Asks about the plug")
    note = watching.locator("#note-list li.note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Asks about the plug")
    expect(note.locator("time")).to_have_text("0:12")
    expect(note.locator(".note-delete")).to_have_count(0)  # the viewer's copy: not theirs
    expect(watching.locator("#track-notes .note-marker")).to_have_count(1)
    expect(writing.locator("#note-list li.note")).to_have_count(1)  # its own, shown once

    writing.locator("#tag-input").fill("Refund")
    writing.keyboard.press("Enter")
    expect(watching.locator("#tags li.tag")).to_have_text(["refund"])

    writing.locator("#note-list li.note .note-delete").click()
    expect(watching.locator("#note-list li.note")).to_have_count(0)
    expect(watching.locator("#track-notes .note-marker")).to_have_count(0)
    expect(watching.locator("#note-count")).to_have_text("0")
    if closed:  # nothing on a closed conversation's page speaks of live updates
        expect(watching.locator("#live-status")).to_have_count(0)
    assert watching.errors == [] and writing.errors == []

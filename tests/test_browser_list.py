"""The list page in Chromium: saved filters survive a reload and apply in one click; watched."""

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests import test_browser
from tests.test_browser import ARTIFACTS, apply, in_thread, open_page, seed_conversation

pytestmark = pytest.mark.django_db(transaction=True)

browser = test_browser.browser  # the one Chromium the other browser tests share


def _silent_conversation() -> str:
    uuid = f.new_uuid()
    apply(f.new_conversation(uuid, participants=[f.participant("Cy Browser")]))
    apply(f.rrweb_frame(uuid, 0, f.rrweb_events(href="https://shop.example/lamps"), kind="init"))
    return uuid


def test_a_saved_filter_is_there_after_a_reload_and_applies_in_one_click(
    browser, daphne_server, staff_client
):
    chatted = seed_conversation()
    silent = in_thread(_silent_conversation)
    page = open_page(browser, daphne_server, staff_client)
    rows = page.locator("table.conversations tbody tr")

    page.goto(f"http://{daphne_server}/")
    page.select_option("select[name=messages]", "1")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/?*messages=1*")
    expect(rows).to_have_count(1)
    page.fill("form.save-filter input[name=name]", "Chats only")
    page.click("form.save-filter button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"http://{daphne_server}/")
    expect(rows).to_have_count(2)
    page.reload()
    saved = page.get_by_role("link", name="Chats only")
    expect(saved).to_be_visible()
    saved.click()
    page.wait_for_url("**/?messages=1")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Hi, is the blue kettle in stock?")
    expect(page.locator(".saved.current")).to_have_text("Chats only ×")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(ARTIFACTS / "list-page-saved-filters.png"), full_page=True)
    assert silent not in page.content() and chatted in page.content()

    page.get_by_role("button", name="Delete saved filter Chats only").click()
    page.wait_for_load_state()
    expect(page.get_by_role("link", name="Chats only")).to_have_count(0)


def test_a_conversation_shows_as_watched_once_its_replay_was_opened(
    browser, daphne_server, staff_client
):
    older = seed_conversation()
    newer = seed_conversation(closed=False)
    page = open_page(browser, daphne_server, staff_client)
    page.goto(f"http://{daphne_server}/")
    row = page.locator("table.conversations tbody tr").filter(
        has=page.locator(f"a[href*='{older}']")
    )
    expect(row.locator(".badge.watched")).to_have_count(0)

    row.locator("a.row-link").click()
    page.wait_for_url(f"**/conversations/{older}/")
    page.wait_for_function("() => window.replayState && window.replayState.firstFrameAt !== null")
    page.go_back()
    page.reload()
    expect(row.locator(".badge.watched")).to_have_text("Watched")
    page.screenshot(path=str(ARTIFACTS / "list-page.png"), full_page=True)

    page.check("input[name=unwatched]")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**unwatched=1*")
    links = page.locator("table.conversations tbody a.row-link")
    expect(links).to_have_count(1)
    assert newer in links.first.get_attribute("href")

"""Scrubbing card numbers and configured patterns out of text and rrweb events."""

import copy
import json

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.scrub import luhn_valid, may_hold_card, scrub_events, scrub_text
from tests import factories as f


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        # Luhn-valid numbers of every length from 13 to 19 digits, as typed in many ways.
        ("4111111111111111", "************1111", 1),
        ("card 4111 1111 1111 1111 exp 12/29", "card **** **** **** 1111 exp 12/29", 1),
        ("4111-1111-1111-1111", "****-****-****-1111", 1),
        ("Amex 3782 822463 10005.", "Amex **** ****** *0005.", 1),
        ("4222222222222", "*********2222", 1),  # 13 digits
        ("6011111111111117", "************1117", 1),
        ("4000000000000000006", "***************0006", 1),  # 19 digits
        ("6221 2600 0000 0000 001", "**** **** **** ***0 001", 1),
        ("two: 4111111111111111, 5555555555554444", "two: ************1111, ************4444", 2),
        ("(4111111111111111)", "(************1111)", 1),
        # Kept: not Luhn-valid, too short or too long, or not one number.
        ("4111111111111112", "4111111111111112", 0),
        ("order 1234567890123", "order 1234567890123", 0),
        ("411111111111", "411111111111", 0),  # 12 digits
        ("41111111111111111111", "41111111111111111111", 0),  # 20 digits
        ("4111 1111 1111 1111 1111", "4111 1111 1111 1111 1111", 0),  # 20 digits, grouped
        ("4111  1111  1111  1111", "4111  1111  1111  1111", 0),  # double spaces: not one
        ("4111.1111.1111.1111", "4111.1111.1111.1111", 0),
        ("", "", 0),
        ("no digits at all", "no digits at all", 0),
    ],
)
def test_scrub_text_masks_luhn_valid_card_numbers_keeping_the_last_four(text, expected, count):
    assert scrub_text(text) == (expected, count)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("79927398713", True), ("79927398710", False), ("0", True)],
)
def test_luhn(digits, valid):
    assert luhn_valid(digits) is valid


@override_settings(REPLAY_SCRUB_PATTERNS=[(r"\b\d{3}-\d{2}-\d{4}\b", "***-**-****")])
def test_configured_patterns_are_masked_after_card_numbers():
    text = "SSN 078-05-1120, card 4111111111111111"
    assert scrub_text(text) == ("SSN ***-**-****, card ************1111", 2)


CARD, MASKED = "4111 1111 1111 1111", "**** **** **** 1111"


def snapshot_with(card: str) -> list[dict]:
    events = f.rrweb_events(count=0)
    body = events[1]["data"]["node"]["childNodes"][0]["childNodes"][0]
    body["childNodes"].append(
        {
            "type": 2,
            "tagName": "div",
            "id": 10,
            "attributes": {"data-card": card, "title": f"Card {card}"},
            "childNodes": [
                {
                    "type": 2,
                    "tagName": "p",
                    "id": 11,
                    "attributes": {},
                    "childNodes": [{"type": 3, "textContent": f"Paid with {card}", "id": 12}],
                }
            ],
        }
    )
    return events


def test_scrub_events_masks_text_and_attributes_in_nested_snapshot_nodes():
    events = snapshot_with(CARD)
    assert scrub_events(events) == 3
    assert events == snapshot_with(MASKED)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"source": 5, "text": CARD, "isChecked": False, "id": 7}, ("text",)),
        ({"source": 0, "texts": [{"id": 4, "value": CARD}]}, ("texts", 0, "value")),
        (
            {"source": 0, "attributes": [{"id": 4, "attributes": {"value": CARD}}]},
            ("attributes", 0, "attributes", "value"),
        ),
        (
            {
                "source": 0,
                "adds": [
                    {
                        "parentId": 3,
                        "nextId": None,
                        "node": {
                            "type": 2,
                            "tagName": "span",
                            "id": 20,
                            "attributes": {},
                            "childNodes": [{"type": 3, "textContent": CARD, "id": 21}],
                        },
                    }
                ],
            },
            ("adds", 0, "node", "childNodes", 0, "textContent"),
        ),
    ],
)
def test_scrub_events_masks_inputs_and_mutations(data, path):
    events = [{"type": 3, "data": data, "timestamp": f.T0}]
    expected = copy.deepcopy(events)
    target = expected[0]["data"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = MASKED

    assert scrub_events(events) == 1
    assert events == expected


def test_a_card_number_in_a_console_message_or_a_request_url_is_masked():
    events = [
        f.console_event(f.T0, f"charge failed for {CARD}", {"card": CARD}),
        f.network_event(f.T0 + 1, f"https://shop.example/pay?card={CARD.replace(' ', '')}"),
    ]
    assert scrub_events(events) == 3
    logged = events[0]["data"]["payload"]["payload"]
    assert logged == ['"charge failed for **** **** **** 1111"', '{"card": "**** **** **** 1111"}']
    assert events[1]["data"]["payload"]["url"] == "https://shop.example/pay?card=************1111"


def test_scrub_events_leaves_events_without_card_numbers_alone():
    events = f.rrweb_events(count=5) + [
        {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": f.T0},
        {"type": 5, "data": {"tag": "order", "payload": {"id": "4111111111111112"}}},
        "not an event",
        {"type": 3, "data": None},
    ]
    before = copy.deepcopy(events)
    assert scrub_events(events) == 0
    assert events == before


def test_scrub_events_handles_a_deeply_nested_page():
    node = {"type": 3, "textContent": CARD, "id": 5000}
    for depth in range(5000):
        node = {"type": 2, "tagName": "div", "id": depth, "attributes": {}, "childNodes": [node]}
    events = [{"type": 2, "data": {"node": node}, "timestamp": f.T0}]
    assert scrub_events(events) == 1


@pytest.mark.parametrize(
    ("text", "may"),
    [
        ('[{"type":3,"data":{"source":1},"timestamp":1736949600009}]', False),  # a Luhn-valid stamp
        ('[{"type":3,"data":{"text":"4111111111111111"},"timestamp":1}]', True),
        ('[{"type":3,"data":{"text":"ts \\"timestamp\\":4111111111111111"},"timestamp":1}]', True),
        ('[{"type":3,"data":{"text":"order 1234567890123"},"timestamp":1}]', False),  # not Luhn
        ('["x\\u009c packed bytes"]', True),
        # A digit sent as an escape completes a card number once parsed ("\uff11" is "１").
        ('[{"type":3,"data":{"text":"411111111111111\\uff11"},"timestamp":1}]', True),
        ('[{"type":3,"data":{"text":"411111111111111\\ud835\\udfcf"},"timestamp":1}]', True),
        ('[{"type":3,"data":{"text":"caf\\u00e9 \\ud83d\\ude00"},"timestamp":1}]', False),
    ],
)
def test_only_batches_that_may_hold_a_card_number_are_walked(text, may):
    assert luhn_valid("1736949600009")
    assert may_hold_card(text) is may


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet="0123456789 -x\"':\u0664\u0661\uff11\U0001d7cf\u2013", max_size=40)
        | st.sampled_from(
            [
                "4111 1111 1111 1111",
                "4222222222222",
                '"timestamp":4111111111111111',
                "4\uff11\uff11\uff11 1111 1111 1111",
                " " * 20,
            ]
        ),
        min_size=1,
        max_size=4,
    ),
    stamp=st.integers(min_value=0, max_value=10**14),
    ascii_only=st.booleans(),
)
def test_a_batch_the_prefilter_passes_over_holds_nothing_to_scrub(texts, stamp, ascii_only):
    """may_hold_card may say yes too often, never no where scrubbing would mask something.

    Digits beyond ASCII (Arabic-Indic U+0661 and U+0664, fullwidth U+FF11, mathematical
    U+1D7CF) are digits to the card pattern too, in text sent as it is and as JSON escapes.
    """
    events = [
        {"type": 3, "data": {"source": 5, "text": text, "id": n}, "timestamp": stamp + n}
        for n, text in enumerate(texts)
    ]
    text = json.dumps(events, separators=(",", ":"), ensure_ascii=ascii_only)
    if not may_hold_card(text):
        assert scrub_events(copy.deepcopy(events)) == 0

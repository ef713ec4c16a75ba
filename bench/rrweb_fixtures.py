"""Deterministic, realistic rrweb recordings of a shopping visit, and the frames carrying them."""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = ["Batch", "batch_text", "make_session", "rrweb_frames", "split_parts"]

# 2025-01-15T14:00:00Z: fixed so that a seed always gives the same bytes.
DEFAULT_START_MS = 1_736_949_600_000
SHOP = "https://shop.example.com"
CDN = "https://cdn.shop.example.com"

# rrweb-snapshot node types and incremental sources (rrweb 2.x).
DOCUMENT, DOCUMENT_TYPE, ELEMENT, TEXT, CDATA, COMMENT = range(6)
MUTATION, MOUSE_MOVE, MOUSE_INTERACTION, SCROLL, VIEWPORT_RESIZE, INPUT = range(6)
MOUSE_UP, MOUSE_DOWN, CLICK, _CONTEXT_MENU, _DBLCLICK, FOCUS, BLUR = range(7)


class Batch(TypedDict):
    """One batch as the browser sends it: an init (page load) or more events."""

    type: Literal["init", "events"]
    events: list[dict[str, Any]]


ADJECTIVES = (
    "Classic Organic Merino Trail Everyday Lightweight Vintage Recycled Waterproof Slim "
    "Relaxed Heritage Performance Cozy Linen Canvas Leather Ultralight Thermal Packable"
).split()
NOUNS = (
    "Hoodie Tee Runner Sneaker Backpack Jacket Beanie Chino Sock Parka Tote Cardigan Legging "
    "Vest Boot Cap Scarf Short Polo Sweater"
).split()
COLOURS = "Black Navy Olive Sand Heather-Grey Rust Forest Cream Slate Burgundy".split()
CATEGORIES = "New Arrivals|Women|Men|Kids|Shoes|Accessories|Outdoor|Sale".split("|")
PAGE_KINDS = ("home", "category", "product", "product", "cart", "checkout")
SEARCHES = ("running shoes", "merino socks", "rain jacket", "gift card", "backpack 20l")
CHAT_LINES = (
    "Hi, do these run true to size?",
    "I usually wear a 9 in most brands",
    "Is there free shipping over $50?",
    "Great, thanks! Can I still use my coupon code?",
    "Perfect, I'll order now",
)
AGENT_LINES = (
    "Hi there! Happy to help.",
    "They run true to size, so a 9 should be perfect.",
    "Yes, shipping is free on orders over $50 within the US.",
    "Absolutely, add it at checkout in the promo field.",
    "Enjoy, and thanks for shopping with us!",
)


def make_session(
    *,
    minutes: float,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
    pages: int | None = None,
) -> list[Batch]:
    """Return the batches a browser would send while recording a visit of `minutes`."""
    rng = random.Random(seed)
    total_ms = max(int(minutes * 60_000), 1_000)
    pages = pages or max(1, round(minutes / 2.5))
    # Uneven time per page, as people linger on product pages and rush through the cart.
    weights = [rng.uniform(0.5, 1.5) for _ in range(pages)]
    scale = total_ms / sum(weights)
    batches: list[Batch] = []
    now = start_ms
    width, height = rng.choice(((1440, 900), (1920, 1080), (1366, 768), (1280, 800)))
    for number, weight in enumerate(weights):
        kind = PAGE_KINDS[number % len(PAGE_KINDS)] if number else "home"
        page = _Page(rng, kind=kind, width=width, height=height)
        duration = int(weight * scale)
        batches.extend(page.record(start=now, duration=duration))
        now += duration + rng.randint(150, 900)  # navigation gap
        width, height = page.width, page.height
    return batches


def batch_text(batch: Batch) -> str:
    """The batch's data as rrweb's client sends it: JSON.stringify of the events."""
    return json.dumps(batch["events"], separators=(",", ":"), ensure_ascii=False)


def split_parts(text: str, max_part_bytes: int) -> list[str]:
    """Split text on character boundaries so each part's UTF-8 fits in max_part_bytes."""
    if max_part_bytes < 4:
        raise ValueError("max_part_bytes must be at least 4 (one UTF-8 character)")
    raw = text.encode("utf-8")
    parts: list[str] = []
    start = 0
    while start < len(raw):
        end = min(start + max_part_bytes, len(raw))
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # never cut inside a character
            end -= 1
        parts.append(raw[start:end].decode("utf-8"))
        start = end
    return parts or [""]


def rrweb_frames(
    conversation_uuid: str,
    batches: Iterable[Batch],
    *,
    start_index: int = 0,
    part_bytes: int = 32 * 1024,
) -> list[dict[str, Any]]:
    """Build the protocol envelopes a client sends for these batches, split into parts."""
    frames: list[dict[str, Any]] = []
    for index, batch in enumerate(batches, start=start_index):
        text = batch_text(batch)
        total_sha = _sha256(text)
        parts = split_parts(text, part_bytes)
        for number, part in enumerate(parts, start=1):
            frames.append(
                {
                    "type": "event",
                    "event_type": "rrweb",
                    "conversation_uuid": conversation_uuid,
                    "event_rrweb": {
                        "type": batch["type"],
                        "event_index": index,
                        "data": part,
                        "data_part": number,
                        "data_total_parts": len(parts),
                        "data_sha256": _sha256(part),
                        "data_total_sha256": total_sha,
                    },
                }
            )
    return frames


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the page ---------------------------------------------------------------------------------

Node = dict[str, Any]
Event = dict[str, Any]


def _inc(data: dict[str, Any], t: int) -> Event:
    return {"type": 3, "data": data, "timestamp": t}


@dataclass
class _Page:
    """One page load: its DOM serialised as rrweb-snapshot does, and what happens on it."""

    rng: random.Random
    kind: str
    width: int
    height: int
    next_id: int = 1
    parents: dict[int, int] = field(default_factory=dict)
    boxes: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (y, height)
    clickable: list[Node] = field(default_factory=list)
    inputs: list[Node] = field(default_factory=list)
    lazy_images: list[Node] = field(default_factory=list)
    anchors: dict[str, Node] = field(default_factory=dict)
    products: list[str] = field(default_factory=list)
    elements: list[int] = field(default_factory=list)  # element ids in document order
    pointer: int = 1  # the element under the pointer
    cart_count: int = 0
    title: str = ""
    page_height: int = 0

    # -- building nodes; ids are given afterwards, in document order, by _assign ------------

    def el(
        self,
        tag: str,
        attrs: dict[str, Any] | None = None,
        children: list[Node] | None = None,
        *,
        height: int = 0,
        svg: bool = False,
        role: str = "",
    ) -> Node:
        """An element; element children get the indentation text nodes real HTML has."""
        kids: list[Node] = []
        for child in children or []:
            if child["type"] == ELEMENT and not svg:
                kids.append(self.text("\n" + "  " * self.rng.randint(2, 6)))
            kids.append(child)
        if kids and kids[-1]["type"] == ELEMENT and not svg:
            kids.append(self.text("\n" + "  " * self.rng.randint(1, 5)))
        node: Node = {
            "type": ELEMENT,
            "tagName": tag,
            "attributes": attrs or {},
            "childNodes": kids,
        }
        if svg:
            node["isSVG"] = True
        if height:
            node["_height"] = height
        if role == "click":
            self.clickable.append(node)
        elif role == "input":
            self.inputs.append(node)
        elif role:
            self.anchors[role] = node
        return node

    def text(self, content: str, *, style: bool = False) -> Node:
        """A text node; CSS inside <style> is flagged isStyle as rrweb does."""
        node: Node = {"type": TEXT, "textContent": content}
        if style:
            node["isStyle"] = True
        return node

    def _assign(self, node: Node, parent: int, y: int = 0) -> int:
        """Give ids in pre-order as rrweb does, note parents and rough vertical boxes."""
        node["id"] = self.next_id
        self.next_id += 1
        self.parents[node["id"]] = parent
        if node["type"] == ELEMENT:
            self.elements.append(node["id"])
        height = node.pop("_height", 0)
        top = y
        for child in node.get("childNodes", ()):
            y = self._assign(child, node["id"], y)
        y = max(y, top + height)
        self.boxes[node["id"]] = (top, y - top)
        return y

    def snapshot(self) -> Node:
        """The FullSnapshot node tree of this page."""
        doctype: Node = {"type": DOCUMENT_TYPE, "name": "html", "publicId": "", "systemId": ""}
        html = self.el("html", {"lang": "en", "class": "js"}, [self.head(), self.body()])
        doc: Node = {"type": DOCUMENT, "childNodes": [doctype, html], "compatMode": "CSS1Compat"}
        self.page_height = max(self._assign(doc, 0), self.height + 200)
        return doc

    # -- the page's parts ------------------------------------------------------------------

    def head(self) -> Node:
        title = {"home": "Home", "cart": "Your cart"}.get(self.kind, self.kind.title())
        version = "?v=1736940012"
        return self.el(
            "head",
            children=[
                self.el("meta", {"charset": "utf-8"}),
                self.el(
                    "meta", {"name": "viewport", "content": "width=device-width,initial-scale=1"}
                ),
                self.el("title", children=[self.text(f"{title} – Northwind Outfitters")]),
                self.el("link", {"rel": "preconnect", "href": CDN}),
                # rrweb inlines readable stylesheets into _cssText.
                self.el(
                    "link",
                    {
                        "rel": "stylesheet",
                        "href": f"{CDN}/theme.css{version}",
                        "_cssText": _THEME_CSS,
                    },
                ),
                self.el("style", children=[self.text(_page_css(self.kind), style=True)]),
                self.el(
                    "script",
                    {"src": f"{CDN}/theme.js{version}", "defer": ""},
                    [self.text("SCRIPT_PLACEHOLDER")],
                ),
                self.el(
                    "script", {"type": "application/ld+json"}, [self.text("SCRIPT_PLACEHOLDER")]
                ),
            ],
        )

    def body(self) -> Node:
        main = {
            "home": self.home,
            "category": self.category,
            "product": self.product,
            "cart": self.cart,
            "checkout": self.checkout,
        }[self.kind]
        return self.el(
            "body",
            {"class": f"template-{self.kind} theme-northwind"},
            [
                self.header(),
                self.el("main", {"id": "MainContent", "role": "main"}, main()),
                self.footer(),
                self.chat_widget(),
            ],
            role="body",
        )

    def link(self, href: str, label: str, cls: str = "", **attrs: str) -> Node:
        return self.el(
            "a",
            {"href": href, **({"class": cls} if cls else {}), **attrs},
            [self.text(label)],
            role="click",
        )

    def header(self) -> Node:
        menu = [
            self.el(
                "li",
                {"class": "menu__item"},
                [self.link(f"{SHOP}/collections/{_slug(c)}", c, "menu__link")],
            )
            for c in CATEGORIES
        ]
        search = self.el(
            "input",
            {
                "type": "search",
                "name": "q",
                "placeholder": "Search products",
                "autocomplete": "off",
                "value": "",
            },
            role="input",
        )
        cart = self.el("span", {"class": "cart-count"}, [self.text("0")], role="cart")
        return self.el(
            "header",
            {"class": "site-header", "data-sticky": "true"},
            [
                self.el(
                    "div",
                    {"class": "announcement"},
                    [
                        self.el(
                            "p", children=[self.text("Free shipping over $50 · Sale ends in ")]
                        ),
                        self.el(
                            "span", {"class": "countdown"}, [self.text("02:14:33")], role="timer"
                        ),
                    ],
                    height=36,
                ),
                self.el(
                    "a",
                    {"href": f"{SHOP}/", "class": "logo", "aria-label": "Northwind"},
                    [self.logo()],
                    role="click",
                ),
                self.el("nav", {"class": "menu", "aria-label": "Main"}, [self.el("ul", {}, menu)]),
                self.el(
                    "form",
                    {"action": "/search", "class": "search", "role": "search"},
                    [search, self.el("button", {"type": "submit"}, [self.text("Search")])],
                ),
                self.el(
                    "a",
                    {"href": f"{SHOP}/cart", "class": "cart-link"},
                    [self.text("Cart "), cart],
                    role="click",
                ),
            ],
            height=96,
        )

    def logo(self) -> Node:
        path = "M12 2L2 22h20L12 2zm0 4.5L18.5 20h-13L12 6.5z"
        return self.el(
            "svg",
            {"viewBox": "0 0 24 24", "width": "140", "height": "32", "aria-hidden": "true"},
            [
                self.el("path", {"d": path, "fill": "currentColor"}, svg=True),
                self.el("title", {}, [self.text("Northwind")], svg=True),
            ],
            svg=True,
        )

    def product_card(self, position: int) -> Node:
        rng = self.rng
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        self.products.append(name)
        colour = rng.choice(COLOURS)
        lazy = position >= 8
        image_attrs = {
            "alt": f"{name} in {colour}",
            "width": "360",
            "height": "450",
            "loading": "lazy",
            "class": "card__image",
        }
        if lazy:
            image_attrs["src"] = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
        else:
            image_attrs.update(_image(rng, f"{_slug(name)}-{_slug(colour)}"))
        image = self.el("img", image_attrs)
        if lazy:
            self.lazy_images.append(image)
        sale = rng.random() < 0.3
        price = rng.randint(18, 240) - 0.01
        prices = [self.el("span", {"class": "price__current"}, [self.text(f"${price:.2f}")])]
        if sale:
            prices.append(
                self.el("s", {"class": "price__compare"}, [self.text(f"${price * 1.25:.2f}")])
            )
        star = "M12 17.3l6.2 3.7-1.6-7L22 9.2l-7.2-.6L12 2 9.2 8.6 2 9.2l5.4 4.8-1.6 7z"
        stars = [self.el("path", {"d": star}, svg=True) for _ in range(5)]
        rating = self.el(
            "div",
            {"class": "rating", "aria-label": f"{rng.randint(35, 50) / 10} out of 5"},
            [
                self.el("svg", {"viewBox": "0 0 120 24", "class": "stars"}, stars, svg=True),
                self.el(
                    "span", {"class": "rating__count"}, [self.text(f"({rng.randint(3, 900)})")]
                ),
            ],
        )
        variant = rng.randint(40_000_000_000, 49_999_999_999)
        href = f"{SHOP}/products/{_slug(name)}?variant={variant}"
        quick_add = self.el(
            "button",
            {"type": "button", "class": "btn btn--quick-add"},
            [self.text("Quick add")],
            role="click",
        )
        info = self.el(
            "div",
            {"class": "card__info"},
            [
                self.el("h3", {"class": "card__title"}, [self.text(name)]),
                self.el("div", {"class": "price"}, prices),
                rating,
                quick_add,
            ],
        )
        card = self.el(
            "div",
            {
                "class": "card" + (" card--sale" if sale else ""),
                "data-product-id": str(7_000_000_000 + rng.randint(0, 999_999)),
            },
            [
                self.el(
                    "a",
                    {"href": href, "class": "card__link", "tabindex": "-1"},
                    [image],
                    role="click",
                ),
                info,
            ],
        )
        return self.el("li", {"class": "grid__item"}, [card], height=110)

    def grid(self, count: int) -> Node:
        cards = [self.product_card(i) for i in range(count)]
        return self.el("ul", {"class": "grid grid--4-col", "role": "list"}, cards)

    def home(self) -> list[Node]:
        slides = [
            self.el(
                "div",
                {"class": "slide", "style": f"background-image:url({CDN}/files/hero-{i}.jpg)"},
                [
                    self.el("h2", {}, [self.text(title)]),
                    self.link(f"{SHOP}/collections/{_slug(title)}", "Shop now", "btn"),
                ],
            )
            for i, title in enumerate(("Winter Sale", "New Arrivals", "Trail Ready"))
        ]
        track = self.el(
            "div",
            {"class": "slider__track", "style": "transform: translateX(0px);"},
            slides,
            role="slider",
        )
        return [
            self.el("section", {"class": "hero"}, [track], height=520),
            self.el(
                "section",
                {"class": "featured"},
                [
                    self.el("h2", {}, [self.text("Best sellers")]),
                    self.grid(self.rng.randint(16, 24)),
                ],
            ),
        ]

    def category(self) -> list[Node]:
        filters = [
            self.el(
                "label",
                {"class": "filter"},
                [
                    self.el(
                        "input",
                        {"type": "checkbox", "name": "filter.v.option.size", "value": size},
                        role="input",
                    ),
                    self.text(size),
                ],
            )
            for size in ("XS", "S", "M", "L", "XL", "XXL", "6", "7", "8", "9", "10", "11")
        ]
        crumbs = [self.link(f"{SHOP}/", "Home"), self.text(" / Men")]
        return [
            self.el("nav", {"class": "breadcrumbs"}, crumbs),
            self.el("aside", {"class": "filters"}, filters, height=120),
            self.grid(self.rng.randint(24, 36)),
        ]

    def product(self) -> list[Node]:
        rng = self.rng
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        self.products.append(name)
        self.title = name
        gallery = [
            self.el(
                "img", {**_image(rng, f"{_slug(name)}-{i}"), "alt": name, "class": "gallery__img"}
            )
            for i in range(6)
        ]
        blurb = "Made from responsibly sourced fibres and built to last. "
        paragraphs = [self.el("p", {}, [self.text(blurb * rng.randint(1, 3))]) for _ in range(4)]
        reviews = [
            self.el(
                "article",
                {"class": "review"},
                [
                    self.el(
                        "h4", {}, [self.text(rng.choice(("Love it", "Great fit", "Runs small")))]
                    ),
                    self.el("p", {}, [self.text("Wore it on our trip and it still looks new. ")]),
                    self.el(
                        "footer", {}, [self.text(f"— Customer {rng.randint(100, 999)}, verified")]
                    ),
                ],
                height=90,
            )
            for _ in range(rng.randint(6, 12))
        ]
        sizes = [self.el("option", {"value": s}, [self.text(s)]) for s in ("S", "M", "L", "XL")]
        info = [
            self.el("h1", {}, [self.text(name)]),
            self.el("div", {"class": "price"}, [self.text(f"${rng.randint(40, 260) - 0.01:.2f}")]),
            self.el("select", {"name": "Size"}, sizes, role="input"),
            self.el(
                "input",
                {"type": "number", "name": "quantity", "value": "1", "min": "1"},
                role="input",
            ),
            self.el(
                "button",
                {"type": "submit", "class": "btn btn--primary", "name": "add"},
                [self.text("Add to cart")],
                role="click",
            ),
            *paragraphs,
        ]
        return [
            self.el("section", {"class": "gallery"}, gallery, height=700),
            self.el("section", {"class": "product__info"}, info, height=300),
            self.el("section", {"class": "reviews"}, reviews),
            self.el(
                "section",
                {"class": "related"},
                [self.el("h2", {}, [self.text("You may also like")]), self.grid(8)],
            ),
        ]

    def cart(self) -> list[Node]:
        rng = self.rng
        rows = []
        for i in range(rng.randint(2, 5)):
            quantity = self.el(
                "input", {"type": "number", "value": "1", "name": "updates[]"}, role="input"
            )
            cells = [
                self.el("img", {**_image(rng, f"cart-item-{i}"), "alt": ""}),
                self.text(f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"),
                quantity,
                self.text(f"${rng.randint(20, 200)}.00"),
            ]
            rows.append(
                self.el(
                    "tr",
                    {"class": "cart-item"},
                    [self.el("td", {}, [cell]) for cell in cells],
                    height=120,
                )
            )
        return [
            self.el("h1", {}, [self.text("Your cart")]),
            self.el("table", {"class": "cart"}, [self.el("tbody", {}, rows)]),
            self.el(
                "div",
                {"class": "totals"},
                [
                    self.text("Subtotal"),
                    self.el("span", {}, [self.text(f"${rng.randint(60, 600)}.00")]),
                ],
            ),
            self.el(
                "button",
                {"class": "btn btn--primary", "name": "checkout"},
                [self.text("Check out")],
                role="click",
            ),
        ]

    def checkout(self) -> list[Node]:
        names = (
            "email",
            "first_name",
            "last_name",
            "address1",
            "address2",
            "city",
            "zip",
            "phone",
            "card_number",
            "card_name",
            "card_expiry",
            "card_cvv",
        )
        rows = [
            self.el(
                "div",
                {"class": "field"},
                [
                    self.el(
                        "label", {"for": f"checkout_{n}"}, [self.text(n.replace("_", " ").title())]
                    ),
                    self.el(
                        "input",
                        {
                            "id": f"checkout_{n}",
                            "name": f"checkout[{n}]",
                            "type": "text",
                            "autocomplete": n,
                            "value": "",
                        },
                        role="input",
                    ),
                ],
                height=70,
            )
            for n in names
        ]
        pay = self.el("button", {"class": "btn btn--primary"}, [self.text("Pay now")], role="click")
        return [self.el("form", {"class": "checkout", "method": "post"}, rows), pay]

    def footer(self) -> Node:
        groups = (
            ("Shop", CATEGORIES[:6]),
            ("Help", ("Shipping", "Returns", "Size guide", "Contact us", "FAQ", "Track order")),
            ("About", ("Our story", "Sustainability", "Careers", "Press", "Stores", "Blog")),
        )
        columns = [
            self.el(
                "div",
                {"class": "footer__col"},
                [
                    self.el("h4", {}, [self.text(title)]),
                    self.el(
                        "ul",
                        {},
                        [
                            self.el("li", {}, [self.link(f"{SHOP}/pages/{_slug(x)}", x)])
                            for x in links
                        ],
                    ),
                ],
            )
            for title, links in groups
        ]
        email = self.el(
            "input",
            {"type": "email", "name": "contact[email]", "placeholder": "Email address"},
            role="input",
        )
        newsletter = self.el(
            "form",
            {"class": "newsletter"},
            [email, self.el("button", {"type": "submit"}, [self.text("Subscribe")])],
        )
        copyright = self.el("p", {"class": "copyright"}, [self.text("© 2025 Northwind Outfitters")])
        return self.el(
            "footer", {"class": "site-footer"}, [*columns, newsletter, copyright], height=400
        )

    def chat_widget(self) -> Node:
        return self.el(
            "div",
            {"id": "uc-chat", "class": "uc-chat uc-chat--collapsed", "aria-live": "polite"},
            [
                self.el(
                    "button",
                    {"class": "uc-chat__launcher", "aria-label": "Chat with us"},
                    [self.text("Chat with us")],
                    role="launcher",
                ),
                self.el("div", {"class": "uc-chat__messages", "role": "log"}, role="messages"),
                self.el(
                    "textarea",
                    {"class": "uc-chat__input", "placeholder": "Type a message…", "rows": "1"},
                    role="chat-input",
                ),
            ],
            role="widget",
        )

    # -- recording ---------------------------------------------------------------------------

    def record(self, *, start: int, duration: int) -> list[Batch]:
        """Record the page: the init batch, then events batches flushed every 1-5 s."""
        rng = self.rng
        node = self.snapshot()
        path = {
            "home": "",
            "category": "collections/men",
            "product": f"products/{_slug(self.title)}",
            "cart": "cart",
            "checkout": f"checkouts/cn/{rng.getrandbits(64):016x}",
        }[self.kind]
        meta = {"href": f"{SHOP}/{path}", "width": self.width, "height": self.height}
        snapshot = {"node": node, "initialOffset": {"left": 0, "top": 0}}
        init: list[Event] = [
            {"type": 4, "data": meta, "timestamp": start},
            {"type": 2, "data": snapshot, "timestamp": start + rng.randint(2, 40)},
        ]
        end = start + duration
        events: list[Event] = []
        if rng.random() < 0.5:
            events.append({"type": 1, "data": {}, "timestamp": start + rng.randint(200, 1500)})
        self._countdown(events, start, end)
        self._slider(events, start, end)
        mouse = [self.width // 2, self.height // 2]
        scroll = [0]
        t = start + rng.randint(300, 1500)
        actions = ("move", "click", "scroll", "type", "chat", "read", "hover", "resize", "buy")
        weights = (30, 14, 18, 6, 4, 12, 10, 1, 4)
        while t < end:
            action = rng.choices(actions, weights)[0]
            if action in ("move", "hover"):
                target = rng.choice(self.clickable)
                t = self._move(events, t, mouse, target)
                if action == "hover":
                    self._hover(events, t, target)
            elif action == "click":
                target = rng.choice(self.clickable)
                t = self._click(events, self._move(events, t, mouse, target), mouse, target)
            elif action == "scroll":
                t = self._scroll(events, t, scroll)
            elif action == "type":
                target = rng.choice(self.inputs)
                t = self._click(events, self._move(events, t, mouse, target), mouse, target)
                t = self._type(events, t, target, rng.choice(SEARCHES))
            elif action == "chat":
                t = self._chat(events, t, mouse)
            elif action == "resize":
                self.width = max(800, self.width + rng.choice((-200, -100, 100, 200)))
                resize = {"source": VIEWPORT_RESIZE, "width": self.width, "height": self.height}
                events.append(_inc(resize, t))
            elif action == "buy":
                t = self._buy(events, t, mouse)
            else:  # reading: the pointer rests
                t += rng.randint(2_000, 12_000)
            t += rng.randint(100, 1_500)
        events = sorted((e for e in events if e["timestamp"] < end), key=lambda e: e["timestamp"])
        return [{"type": "init", "events": init}, *self._flush(events, start)]

    def _flush(self, events: list[Event], start: int) -> list[Batch]:
        """Cut the events into batches at the client's 1-5 s flush ticks."""
        batches: list[Batch] = []
        due = start + self.rng.randint(1_000, 5_000)
        pending: list[Event] = []
        for event in events:
            while event["timestamp"] >= due:
                if pending:
                    batches.append({"type": "events", "events": pending})
                    pending = []
                due += self.rng.randint(1_000, 5_000)
            pending.append(event)
        if pending:
            batches.append({"type": "events", "events": pending})
        return batches

    @staticmethod
    def _mutation(t: int, **changes: list[dict[str, Any]]) -> Event:
        data: dict[str, Any] = {
            "source": MUTATION,
            "texts": [],
            "attributes": [],
            "removes": [],
            "adds": [],
        }
        data.update(changes)
        return _inc(data, t)

    def _countdown(self, events: list[Event], start: int, end: int) -> None:
        """The announcement's sale countdown: a text mutation every second of the visit."""
        text_id = self.anchors["timer"]["childNodes"][0]["id"]
        left = 2 * 3600 + 14 * 60 + 33 - (start // 1000) % 3600
        for t in range(start + 1000, end, 1000):
            left -= 1
            value = f"{left // 3600:02d}:{left // 60 % 60:02d}:{left % 60:02d}"
            events.append(self._mutation(t, texts=[{"id": text_id, "value": value}]))

    def _slider(self, events: list[Event], start: int, end: int) -> None:
        slider = self.anchors.get("slider")
        if slider is None:
            return
        for n, t in enumerate(range(start + 5000, end, 5000), start=1):
            style = f"transform: translateX(-{n % 3 * self.width}px); transition: transform 0.6s;"
            change = {"id": slider["id"], "attributes": {"style": style}}
            events.append(self._mutation(t, attributes=[change]))

    def _move(self, events: list[Event], t: int, mouse: list[int], target: Node) -> int:
        """Glide the pointer to target: sampled every 50 ms, flushed every 500 ms."""
        rng = self.rng
        top, height = self.boxes[target["id"]]
        goal_x = rng.randint(20, self.width - 20)
        goal_y = min(self.height - 5, max(5, top % self.height + min(height, 40) // 2))
        steps = rng.randint(6, 30)
        positions: list[dict[str, int]] = []
        times: list[int] = []
        flush_at = t + 500
        for step in range(1, steps + 1):
            frac = step / steps
            ease = frac * frac * (3 - 2 * frac)
            x = round(mouse[0] + (goal_x - mouse[0]) * ease + rng.uniform(-3, 3))
            y = round(mouse[1] + (goal_y - mouse[1]) * ease + rng.uniform(-3, 3))
            t += rng.randint(45, 60)
            if frac > 0.7:
                self.pointer = target["id"]
            elif rng.random() < 0.2:  # crossed into a neighbouring element
                at = bisect.bisect_left(self.elements, self.pointer) + rng.randint(-40, 40)
                self.pointer = self.elements[max(0, min(at, len(self.elements) - 1))]
            positions.append({"x": x, "y": y, "id": self.pointer, "timeOffset": 0})
            times.append(t)
            if t >= flush_at or step == steps:
                for position, at in zip(positions, times, strict=True):
                    position["timeOffset"] = at - t
                events.append(_inc({"source": MOUSE_MOVE, "positions": positions}, t))
                positions, times = [], []
                flush_at = t + 500
        mouse[0], mouse[1] = goal_x, goal_y
        return t

    def _click(self, events: list[Event], t: int, mouse: list[int], target: Node) -> int:
        rng = self.rng
        focus = target["tagName"] in ("input", "textarea", "select")
        kinds = (MOUSE_DOWN, FOCUS, MOUSE_UP, CLICK) if focus else (MOUSE_DOWN, MOUSE_UP, CLICK)
        for kind in kinds:
            t += rng.randint(60, 140) if kind == MOUSE_UP else rng.randint(0, 20)
            data: dict[str, Any] = {"source": MOUSE_INTERACTION, "type": kind, "id": target["id"]}
            if kind != FOCUS:
                data.update(x=mouse[0], y=mouse[1], pointerType=0)
            events.append(_inc(data, t))
        return t

    def _scroll(self, events: list[Event], t: int, scroll: list[int]) -> int:
        """Wheel scrolling: throttled scroll events; lazy images load as they come into view."""
        rng = self.rng
        direction = 1 if rng.random() < 0.75 else -1
        limit = max(0, self.page_height - self.height)
        for _ in range(rng.randint(3, 15)):
            t += rng.randint(100, 180)
            scroll[0] = min(limit, max(0, scroll[0] + direction * rng.randint(40, 240)))
            events.append(_inc({"source": SCROLL, "id": 1, "x": 0, "y": scroll[0]}, t))
            if self.lazy_images and rng.random() < 0.3:
                image = self.lazy_images.pop(0)
                attrs = {
                    **_image(rng, _slug(rng.choice(self.products))),
                    "class": "card__image is-loaded",
                }
                change = {"id": image["id"], "attributes": attrs}
                events.append(self._mutation(t + rng.randint(20, 300), attributes=[change]))
        return t

    def _hover(self, events: list[Event], t: int, target: Node) -> None:
        """A hover style added by the theme's script, then taken away."""
        base = target["attributes"].get("class", "")
        hovered = {"id": target["id"], "attributes": {"class": f"{base} is-hovered".strip()}}
        left = {"id": target["id"], "attributes": {"class": base or None}}
        events.append(self._mutation(t, attributes=[hovered]))
        events.append(self._mutation(t + self.rng.randint(300, 2000), attributes=[left]))

    def _type(self, events: list[Event], t: int, target: Node, phrase: str) -> int:
        """Keystrokes in a field: one input event per change; checkout fields are masked."""
        masked = self.kind == "checkout"
        for end in range(1, len(phrase) + 1):
            t += self.rng.randint(80, 320)
            text = "*" * end if masked else phrase[:end]
            data = {
                "source": INPUT,
                "text": text,
                "isChecked": False,
                "userTriggered": True,
                "id": target["id"],
            }
            events.append(_inc(data, t))
        t += self.rng.randint(200, 800)
        events.append(_inc({"source": MOUSE_INTERACTION, "type": BLUR, "id": target["id"]}, t))
        return t

    def _add(self, t: int, parent: Node, tree: Node) -> Event:
        """A mutation adding a new subtree (given fresh ids) at the end of parent."""
        self._assign(tree, parent["id"])
        return self._mutation(t, adds=[{"parentId": parent["id"], "nextId": None, "node": tree}])

    def _remove(self, t: int, parent: Node, tree: Node) -> Event:
        return self._mutation(t, removes=[{"parentId": parent["id"], "id": tree["id"]}])

    def _chat(self, events: list[Event], t: int, mouse: list[int]) -> int:
        """Open the chat widget, send a line, and receive the agent's answer."""
        rng = self.rng
        launcher, messages, box = (self.anchors[k] for k in ("launcher", "messages", "chat-input"))
        widget = self.anchors["widget"]
        t = self._click(events, self._move(events, t, mouse, launcher), mouse, launcher)
        opened = {"id": widget["id"], "attributes": {"class": "uc-chat uc-chat--open"}}
        events.append(self._mutation(t + 16, attributes=[opened]))
        line = rng.choice(CHAT_LINES)
        t = self._type(events, t + 400, box, line)
        events.append(self._add(t + 30, messages, self._bubble("customer", line)))
        cleared = {"source": INPUT, "text": "", "isChecked": False, "id": box["id"]}
        events.append(_inc(cleared, t + 31))
        t += rng.randint(800, 3000)
        typing = self.el("div", {"class": "uc-typing"}, [self.text("Agent is typing…")])
        events.append(self._add(t, messages, typing))
        t += rng.randint(2000, 8000)
        events.append(self._remove(t, messages, typing))
        events.append(self._add(t + 5, messages, self._bubble("agent", rng.choice(AGENT_LINES))))
        return t

    def _bubble(self, who: str, line: str) -> Node:
        stamp = self.el("time", {"datetime": "2025-01-15T14:00:00Z"}, [self.text("just now")])
        parts = [self.el("p", {}, [self.text(line)]), stamp]
        if who == "agent":
            avatar = f"{CDN}/avatars/agent-{self.rng.randint(1, 9)}.png"
            parts.insert(0, self.el("img", {"class": "uc-avatar", "src": avatar, "alt": ""}))
        attrs = {"class": f"uc-msg uc-msg--{who}", "data-message-uuid": _uuid(self.rng)}
        return self.el("div", attrs, parts)

    def _buy(self, events: list[Event], t: int, mouse: list[int]) -> int:
        """Click a buy button: the cart count changes and a toast slides in, then out."""
        rng = self.rng
        button = rng.choice(self.clickable)
        t = self._click(events, self._move(events, t, mouse, button), mouse, button)
        t += rng.randint(150, 600)
        self.cart_count += 1
        cart = self.anchors["cart"]
        count = {"id": cart["childNodes"][0]["id"], "value": str(self.cart_count)}
        bump = {"id": cart["id"], "attributes": {"class": "cart-count cart-count--bump"}}
        events.append(self._mutation(t, texts=[count], attributes=[bump]))
        product = rng.choice(self.products or ["Gift card"])
        toast = self.el(
            "div",
            {"class": "toast toast--success", "role": "status"},
            [
                self.el("img", {**_image(rng, _slug(product)), "alt": ""}),
                self.el("p", {}, [self.text(f"{product} added to your cart")]),
                self.link(f"{SHOP}/cart", "View cart", "btn btn--small"),
            ],
        )
        self.clickable.pop()  # the toast's link leaves with the toast
        body = self.anchors["body"]
        events.append(self._add(t + 5, body, toast))
        events.append(self._remove(t + rng.randint(2500, 4000), body, toast))
        return t


def _image(rng: random.Random, handle: str) -> dict[str, str]:
    """src and srcset of a CDN product image, as themes write them."""
    src = f"{CDN}/files/{handle}.jpg?v={1_700_000_000 + rng.randint(0, 9_999_999)}"
    srcset = ", ".join(f"{src}&width={w} {w}w" for w in (180, 360, 540, 720, 900))
    return {"src": f"{src}&width=360", "srcset": srcset}


def _slug(text: str) -> str:
    return "-".join(text.lower().replace("/", " ").split())


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _page_css(kind: str) -> str:
    """The template's inline <style>: per-section spacing the theme editor writes."""
    sections = "".join(
        f"#section-{kind}__{n}{{padding-top:{12 * n}px;padding-bottom:{8 * n}px}}"
        f"@media screen and (min-width:750px){{#section-{kind}__{n}"
        f"{{padding-top:{16 * n}px;padding-bottom:{12 * n}px}}}}"
        for n in range(1, 13)
    )
    return f"\n      .template-{kind} main{{min-height:60vh}}\n      {sections}\n    "


# The theme's stylesheet (a few KB), one rule per line; rrweb stores it minified.
_THEME_CSS = "".join(
    line.strip()
    for line in """
    :root{--color-base:#1b1f23;--color-accent:#0b6e4f;--color-sale:#c0392b;--radius:6px;
    --gap:24px;--font-body:'Inter',system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
    *,*::before,*::after{box-sizing:border-box}
    html{font-size:62.5%;-webkit-text-size-adjust:100%}
    body{margin:0;font-family:var(--font-body);font-size:1.6rem;line-height:1.5;
    color:var(--color-base);background:#fff}
    a{color:inherit;text-decoration:none}a:hover{text-decoration:underline}
    img{max-width:100%;height:auto;display:block}
    .site-header{position:sticky;top:0;z-index:10;display:grid;
    grid-template-columns:auto 1fr auto auto;align-items:center;gap:var(--gap);
    padding:1.2rem 4rem;background:#fff;border-bottom:1px solid #e5e5e5}
    .announcement{grid-column:1/-1;text-align:center;font-size:1.3rem;
    background:var(--color-accent);color:#fff;padding:.8rem}
    .menu ul{display:flex;gap:2rem;list-style:none;margin:0;padding:0}
    .menu__link{font-weight:500;letter-spacing:.02em}
    .search input{width:28rem;padding:.8rem 1.2rem;border:1px solid #ccc;
    border-radius:var(--radius)}
    .cart-count{display:inline-flex;min-width:2rem;height:2rem;border-radius:1rem;
    background:var(--color-base);color:#fff;font-size:1.2rem;justify-content:center}
    .cart-count--bump{animation:bump .3s ease-out}@keyframes bump{50%{transform:scale(1.3)}}
    .grid{display:grid;gap:var(--gap);list-style:none;padding:0;margin:0}
    .grid--4-col{grid-template-columns:repeat(4,minmax(0,1fr))}
    @media (max-width:989px){.grid--4-col{grid-template-columns:repeat(2,minmax(0,1fr))}
    .site-header{padding:1rem 1.6rem}}
    .card{position:relative;display:flex;flex-direction:column;gap:1rem}
    .card--sale::after{content:'Sale';position:absolute;top:1rem;left:1rem;
    background:var(--color-sale);color:#fff;padding:.2rem .8rem;border-radius:var(--radius)}
    .card__image{aspect-ratio:4/5;object-fit:cover;border-radius:var(--radius);
    background:#f3f3f3;transition:opacity .3s}.card__image.is-loaded{opacity:1}
    .card__title{font-size:1.5rem;margin:0;font-weight:600}
    .price{display:flex;gap:.8rem;align-items:baseline}.price__compare{color:#767676}
    .price__current{font-weight:600}
    .rating{display:flex;align-items:center;gap:.4rem;color:#f5a623}
    .stars{width:8rem;height:1.6rem}
    .btn{display:inline-flex;align-items:center;justify-content:center;padding:1.2rem 2.4rem;
    border:1px solid var(--color-base);border-radius:var(--radius);background:#fff;
    cursor:pointer;font:inherit}
    .btn--primary{background:var(--color-base);color:#fff}
    .btn--quick-add{width:100%;opacity:0;transition:opacity .2s}
    .card:hover .btn--quick-add{opacity:1}
    .is-hovered{outline:2px solid var(--color-accent);outline-offset:2px}
    .hero{position:relative;overflow:hidden;height:52rem}.slider__track{display:flex;height:100%}
    .slide{flex:0 0 100%;background-size:cover;background-position:center;display:flex;
    flex-direction:column;justify-content:flex-end;padding:6rem;color:#fff}
    .filters{display:grid;grid-template-columns:repeat(6,auto);gap:.8rem}
    .filter{display:flex;gap:.4rem;align-items:center}
    .gallery{display:grid;grid-template-columns:repeat(2,1fr);gap:1rem}
    .product__info{position:sticky;top:10rem}
    .review{border-top:1px solid #eee;padding:2rem 0}.review footer{color:#767676;font-size:1.3rem}
    .cart{width:100%;border-collapse:collapse}.cart td{padding:1.6rem;border-bottom:1px solid #eee}
    .totals{display:flex;justify-content:space-between;font-size:2rem}
    .checkout .field{display:flex;flex-direction:column;margin-bottom:1.6rem}
    .checkout input{padding:1.2rem;border:1px solid #d9d9d9;border-radius:var(--radius)}
    .site-footer{display:grid;grid-template-columns:repeat(4,1fr);gap:4rem;padding:6rem 4rem;
    background:#f7f7f5;margin-top:8rem}.site-footer ul{list-style:none;padding:0}
    .toast{position:fixed;right:2rem;top:8rem;display:flex;gap:1rem;align-items:center;
    padding:1.2rem 1.6rem;background:#fff;box-shadow:0 8px 24px rgba(0,0,0,.15);
    border-radius:var(--radius);animation:slide-in .25s ease-out}
    @keyframes slide-in{from{transform:translateY(-1rem);opacity:0}to{transform:none;opacity:1}}
    .uc-chat{position:fixed;right:2rem;bottom:2rem;z-index:100;width:36rem;font-size:1.4rem}
    .uc-chat--collapsed .uc-chat__messages,.uc-chat--collapsed .uc-chat__input{display:none}
    .uc-chat__launcher{border-radius:2.4rem;padding:1.2rem 2rem;background:var(--color-accent);
    color:#fff;border:0}
    .uc-chat__messages{max-height:40rem;overflow-y:auto;background:#fff;padding:1.2rem;
    display:flex;flex-direction:column;gap:.8rem}
    .uc-msg{max-width:80%;padding:.8rem 1.2rem;border-radius:1.2rem}
    .uc-msg--customer{align-self:flex-end;background:var(--color-accent);color:#fff}
    .uc-msg--agent{align-self:flex-start;background:#f0f0f0;display:flex;gap:.8rem}
    .uc-avatar{width:2.4rem;height:2.4rem;border-radius:50%}
    .uc-typing{color:#767676;font-style:italic}
    """.splitlines()
)

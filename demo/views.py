"""The demo shop and its agent console: the whole loop, shopper to staff, on one server.

Served only when this app is installed (DEBUG or REPLAY_DEMO). The shop's pages embed the
reference client with the `demo` ingest key; an agent's answer is stored through the ingest
services like any frame.
"""

import json
import uuid as uuid_module
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from conversations import ingest, selectors
from conversations.live import live_path
from conversations.models import Conversation, Message, Participant
from conversations.permissions import staff_required
from demo.keys import demo_key_ensure

MERCHANT_ID = "HARBOR"
# Conversation uuids this browser's shop pages were given; a page may read only their chats.
SESSION_CONVERSATIONS = "demo_conversations"
SESSION_CART = "demo_cart"
KEEP_CONVERSATIONS = 20
MAX_REPLY_CHARS = 4000


@dataclass(frozen=True)
class Product:
    slug: str
    name: str
    price: Decimal
    tagline: str
    description: str
    colour: str  # the product picture is drawn in this colour


PRODUCTS = [
    Product(
        "stoneware-mug",
        "Stoneware mug",
        Decimal("18.00"),
        "Hand-glazed, 350 ml",
        "Thrown on the wheel in our Porto workshop and glazed by hand, so no two are alike. "
        "Dishwasher and microwave safe.",
        "#3f6f8f",
    ),
    Product(
        "linen-apron",
        "Linen apron",
        Decimal("42.00"),
        "Stonewashed European linen",
        "A full-length apron with deep pockets and adjustable cross-back straps. Softens with "
        "every wash.",
        "#b7794a",
    ),
    Product(
        "oak-board",
        "Oak serving board",
        Decimal("56.00"),
        "Solid oak, oiled",
        "Cut from one piece of FSC-certified oak and finished with food-safe oil. 45 × 22 cm.",
        "#8a6a3b",
    ),
    Product(
        "copper-kettle",
        "Copper kettle",
        Decimal("89.00"),
        "1.2 l, works on induction",
        "A whistling kettle with a brushed copper body and a stay-cool walnut handle.",
        "#c0693a",
    ),
    Product(
        "wool-throw",
        "Merino wool throw",
        Decimal("120.00"),
        "130 × 180 cm, undyed",
        "Woven from undyed merino in a herringbone pattern; warm without weight.",
        "#7d8a76",
    ),
    Product(
        "glass-carafe",
        "Glass carafe",
        Decimal("34.00"),
        "Mouth-blown, 1 l",
        "A mouth-blown borosilicate carafe with a tumbler that doubles as its lid.",
        "#5d8fa3",
    ),
]
PRODUCTS_BY_SLUG = {product.slug: product for product in PRODUCTS}
SHIPPING = Decimal("6.00")


# The shop ----------------------------------------------------------------------------------


def _conversation_for_page(request: HttpRequest) -> str:
    """A fresh conversation uuid this browser may use (a tab already chatting keeps its own)."""
    uuid = str(uuid_module.uuid4())
    kept = [u for u in request.session.get(SESSION_CONVERSATIONS, []) if u != uuid]
    request.session[SESSION_CONVERSATIONS] = (kept + [uuid])[-KEEP_CONVERSATIONS:]
    return uuid


def _cart(request: HttpRequest) -> dict[str, int]:
    return {
        slug: quantity
        for slug, quantity in request.session.get(SESSION_CART, {}).items()
        if slug in PRODUCTS_BY_SLUG and quantity > 0
    }


def _cart_lines(request: HttpRequest) -> tuple[list[dict], Decimal]:
    lines = [
        {"product": PRODUCTS_BY_SLUG[slug], "quantity": quantity}
        for slug, quantity in _cart(request).items()
    ]
    for line in lines:
        line["total"] = line["product"].price * line["quantity"]
    return lines, sum((line["total"] for line in lines), Decimal("0"))


def _shop_render(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    _, raw_key, _ = demo_key_ensure()
    client_config = {
        "key": raw_key,
        "conversationUuid": _conversation_for_page(request),
        "merchantId": MERCHANT_ID,
        "messagesUrl": reverse("demo:chat-messages", kwargs={"uuid": "UUID"}),
    }
    cart_count = sum(_cart(request).values())
    return render(
        request,
        template,
        {**context, "client_config": client_config, "cart_count": cart_count},
    )


@require_GET
def shop_home(request: HttpRequest) -> HttpResponse:
    return _shop_render(request, "demo/home.html", {"products": PRODUCTS})


@require_GET
def shop_product(request: HttpRequest, slug: str) -> HttpResponse:
    product = PRODUCTS_BY_SLUG.get(slug)
    if product is None:
        raise Http404("No such product.")
    others = [p for p in PRODUCTS if p.slug != slug][:3]
    return _shop_render(request, "demo/product.html", {"product": product, "others": others})


@require_POST
def shop_cart_add(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("product", "")
    if slug not in PRODUCTS_BY_SLUG:
        raise Http404("No such product.")
    try:
        quantity = max(1, min(int(request.POST.get("quantity", "1")), 20))
    except ValueError:
        quantity = 1
    cart = _cart(request)
    cart[slug] = min(cart.get(slug, 0) + quantity, 20)
    request.session[SESSION_CART] = cart
    return redirect("demo:cart")


@require_GET
def shop_cart(request: HttpRequest) -> HttpResponse:
    lines, subtotal = _cart_lines(request)
    shipping = SHIPPING if lines else Decimal("0")
    return _shop_render(
        request,
        "demo/cart.html",
        {"lines": lines, "subtotal": subtotal, "shipping": shipping, "total": subtotal + shipping},
    )


def shop_checkout(request: HttpRequest) -> HttpResponse:
    lines, subtotal = _cart_lines(request)
    if request.method == "POST":
        # The card is never stored or echoed: a real shop hands it to its payment provider.
        name = request.POST.get("name", "").strip()[:100]
        request.session[SESSION_CART] = {}
        request.session["demo_order"] = {
            "number": f"HP-{uuid_module.uuid4().hex[:6].upper()}",
            "name": name,
            "total": str(subtotal + (SHIPPING if lines else 0)),
        }
        return redirect("demo:thanks")
    shipping = SHIPPING if lines else Decimal("0")
    return _shop_render(
        request,
        "demo/checkout.html",
        {"lines": lines, "subtotal": subtotal, "shipping": shipping, "total": subtotal + shipping},
    )


@require_GET
def shop_thanks(request: HttpRequest) -> HttpResponse:
    return _shop_render(request, "demo/thanks.html", {"order": request.session.get("demo_order")})


def _message_json(message: Message, customer_arn: str) -> dict:
    return {
        "id": message.message_uuid,
        "author": message.author_name or "Unknown",
        "body": message.body,
        "epoch": message.message_epoch,
        "customer": bool(customer_arn) and message.author_arn == customer_arn,
    }


@require_GET
def chat_messages(request: HttpRequest, uuid: str) -> HttpResponse:
    """The chat as stored, for the shopper's chat box; only for this browser's conversations."""
    kept = request.session.get(SESSION_CONVERSATIONS, [])
    if uuid not in kept:
        return JsonResponse({"error": "not your conversation"}, status=403)
    if kept[-1] != uuid:  # in use: keep it among the newest
        request.session[SESSION_CONVERSATIONS] = [u for u in kept if u != uuid] + [uuid]
    conversation = Conversation.objects.filter(uuid=uuid).first()
    if conversation is None:
        return JsonResponse({"messages": []})
    customer = selectors.customer_arn(conversation)
    messages = conversation.messages.order_by("message_epoch", "received_at", "id")
    return JsonResponse({"messages": [_message_json(m, customer) for m in messages]})


# The agent console -------------------------------------------------------------------------


@require_GET
@staff_required
def agent_index(request: HttpRequest) -> HttpResponse:
    conversations = Conversation.objects.prefetch_related("participants").order_by(
        "closed", "-first_seen_at"
    )[:30]
    return render(request, "demo/agent_index.html", {"conversations": conversations})


@require_GET
@staff_required
def agent_console(request: HttpRequest, uuid: str) -> HttpResponse:
    data = selectors.replay_data(uuid=uuid)
    if data is None:
        raise Http404("No such conversation.")
    conversation, items = data.conversation, data.items
    batches = selectors.recording_batches(conversation)
    pages = [s["href"] for s in selectors.segments(batches) if s.get("href")]
    customer = conversation.participants.order_by("joined_dts", "id").first()
    config = {
        "uuid": conversation.uuid,
        "livePath": live_path(conversation.uuid),
        "replyUrl": reverse("demo:agent-reply", kwargs={"uuid": conversation.uuid}),
        "agentName": _agent_name(request.user),
    }
    return render(
        request,
        "demo/agent.html",
        {
            "conversation": conversation,
            "customer": customer,
            "messages": [i for i in items if i["kind"] == "message"],
            "pages": pages,
            "config": config,
        },
    )


def _agent_name(user) -> str:
    return user.get_full_name() or user.get_username()


def _now() -> tuple[str, int]:
    now = datetime.now(UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), int(
        now.timestamp() * 1000
    )


def agent_reply_frames(*, conversation_uuid: str, user, body: str, joined: bool) -> list[dict]:
    """The frames an agent's answer is: a `participant join` the first time, then the message."""
    dts, epoch = _now()
    arn = f"arn:agent:{user.get_username()}"
    frames: list[dict] = []
    if not joined:
        frames.append(
            {
                "type": "event",
                "event_type": "participant join",
                "conversation_uuid": conversation_uuid,
                "event_participant_join_participant": {
                    "conversation_participant_arn": arn,
                    "conversation_participant_name": _agent_name(user),
                    "joined_dts": dts,
                    "status": "active",
                },
            }
        )
    frames.append(
        {
            "type": "message",
            "conversation_uuid": conversation_uuid,
            "message": {
                "conversation_message_uuid": str(uuid_module.uuid4()),
                "client_message_id": str(uuid_module.uuid4()),
                "author_conversation_participant_arn": arn,
                "author_conversation_participant_name": _agent_name(user),
                "body": body,
                "message_dts": dts,
                "message_epoch": epoch,
                "type": "message",
                "media_urls": [],
            },
        }
    )
    return frames


@require_POST
@staff_required
def agent_reply(request: HttpRequest, uuid: str) -> HttpResponse:
    """Store an agent's answer as frames through the ingest services, like any source's."""
    conversation = Conversation.objects.filter(uuid=uuid).first()
    if conversation is None:
        raise Http404("No such conversation.")
    body = request.POST.get("body", "").strip()
    if not body:
        return JsonResponse({"error": "Write an answer first."}, status=400)
    if len(body) > MAX_REPLY_CHARS:
        return JsonResponse({"error": f"Keep it under {MAX_REPLY_CHARS} characters."}, status=400)
    joined = Participant.objects.filter(
        conversation=conversation, arn=f"arn:agent:{request.user.get_username()}"
    ).exists()
    frames = agent_reply_frames(conversation_uuid=uuid, user=request.user, body=body, joined=joined)
    items = [ingest.item_from_text(json.dumps(frame)) for frame in frames]
    outcomes = ingest.items_apply(items, source=None)
    if outcomes[-1].status != ingest.STORED:
        return JsonResponse({"error": outcomes[-1].reason or "Not stored."}, status=409)
    return JsonResponse({"message": frames[-1]["message"]}, status=201)

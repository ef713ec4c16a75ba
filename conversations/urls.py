from django.urls import path

from conversations import api, demo, export_views, views

app_name = "conversations"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("conversations/<conversation:uuid>/", views.conversation_replay, name="replay"),
    path(
        "conversations/<conversation:uuid>/recording/index.json",
        views.recording_index,
        name="recording-index",
    ),
    path(
        "conversations/<conversation:uuid>/recording/events.json",
        views.recording_events,
        name="recording-events",
    ),
    path("assets/<str:token>", views.asset, name="asset"),
    path(
        "conversations/<conversation:uuid>/export/<str:fmt>/",
        export_views.conversation_export,
        name="export",
    ),
    path("api/conversations/", api.api_conversation_list, name="api-list"),
    path("api/conversations/<conversation:uuid>/", api.api_conversation_detail, name="api-detail"),
    path(
        "api/conversations/<conversation:uuid>/recording/",
        api.api_conversation_recording,
        name="api-recording",
    ),
    # The demo shop and its agent console (served only when the demo is enabled).
    path("demo/", demo.shop_home, name="demo-home"),
    path("demo/products/<slug:slug>/", demo.shop_product, name="demo-product"),
    path("demo/cart/", demo.shop_cart, name="demo-cart"),
    path("demo/cart/add/", demo.shop_cart_add, name="demo-cart-add"),
    path("demo/checkout/", demo.shop_checkout, name="demo-checkout"),
    path("demo/thanks/", demo.shop_thanks, name="demo-thanks"),
    path(
        "demo/chat/<conversation:uuid>/messages.json", demo.chat_messages, name="demo-chat-messages"
    ),
    path("demo/agent/", demo.agent_index, name="demo-agent-index"),
    path("demo/agent/<conversation:uuid>/", demo.agent_console, name="demo-agent"),
    path("demo/agent/<conversation:uuid>/reply/", demo.agent_reply, name="demo-agent-reply"),
]

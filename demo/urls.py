"""The demo shop and its agent console, mounted at /demo/ by replay/urls.py when installed."""

from django.urls import path

from demo import views

app_name = "demo"

urlpatterns = [
    path("", views.shop_home, name="home"),
    path("products/<slug:slug>/", views.shop_product, name="product"),
    path("cart/", views.shop_cart, name="cart"),
    path("cart/add/", views.shop_cart_add, name="cart-add"),
    path("checkout/", views.shop_checkout, name="checkout"),
    path("thanks/", views.shop_thanks, name="thanks"),
    path("chat/<conversation:uuid>/messages.json", views.chat_messages, name="chat-messages"),
    path("agent/", views.agent_index, name="agent-index"),
    path("agent/<conversation:uuid>/", views.agent_console, name="agent"),
    path("agent/<conversation:uuid>/reply/", views.agent_reply, name="agent-reply"),
]

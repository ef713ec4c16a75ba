"""Top-level URLs: admin, sign-in, and the conversations app."""

from django.contrib import admin
from django.urls import include, path

from conversations.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("conversations.urls")),
]

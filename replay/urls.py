"""Top-level URLs: admin, sign-in, the conversations app, and the demo shop if installed."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from conversations.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("conversations.urls")),
]
if apps.is_installed("demo"):
    urlpatterns.append(path("demo/", include("demo.urls")))

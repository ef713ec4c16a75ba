from django.urls import path

from conversations import api

app_name = "conversations"

urlpatterns = [
    path("api/conversations/", api.api_conversation_list, name="api-list"),
    path("api/conversations/<str:uuid>/", api.api_conversation_detail, name="api-detail"),
    path(
        "api/conversations/<str:uuid>/recording/",
        api.api_conversation_recording,
        name="api-recording",
    ),
]

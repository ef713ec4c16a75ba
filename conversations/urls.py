from django.urls import path

from conversations import api, export_views, views

app_name = "conversations"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("conversations/<str:uuid>/", views.conversation_replay, name="replay"),
    path(
        "conversations/<str:uuid>/recording/index.json",
        views.recording_index,
        name="recording-index",
    ),
    path(
        "conversations/<str:uuid>/recording/events.json",
        views.recording_events,
        name="recording-events",
    ),
    path(
        "conversations/<str:uuid>/export/<str:fmt>/",
        export_views.conversation_export,
        name="export",
    ),
    path("api/conversations/", api.api_conversation_list, name="api-list"),
    path("api/conversations/<str:uuid>/", api.api_conversation_detail, name="api-detail"),
    path(
        "api/conversations/<str:uuid>/recording/",
        api.api_conversation_recording,
        name="api-recording",
    ),
]

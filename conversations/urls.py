from django.urls import path

from conversations import annotation_views, api, export_views, views

app_name = "conversations"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("filters/", views.saved_filter_save, name="filter-save"),
    path("filters/<int:pk>/delete/", views.saved_filter_delete, name="filter-delete"),
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
    path(
        "conversations/<conversation:uuid>/notes/",
        annotation_views.note_create,
        name="note-create",
    ),
    path(
        "conversations/<conversation:uuid>/notes/<int:note_id>/",
        annotation_views.note_delete,
        name="note-delete",
    ),
    path(
        "conversations/<conversation:uuid>/tags/",
        annotation_views.conversation_tags,
        name="tags",
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
]

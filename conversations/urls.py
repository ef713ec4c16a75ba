from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("api/conversations/", views.api_conversation_list, name="api-list"),
    path("api/conversations/<str:uuid>/", views.api_conversation_detail, name="api-detail"),
    path(
        "api/conversations/<str:uuid>/recording/",
        views.api_conversation_recording,
        name="api-recording",
    ),
]

from django.urls import path

from . import views

app_name = "automation"

VERBS = "<str:verb>/"

urlpatterns = [
    path("schedules/", views.schedule_list, name="schedules"),
    path("schedules/new/", views.schedule_new, name="schedule_new"),
    path("schedules/<str:schedule_id>/", views.schedule_detail, name="schedule"),
    path("schedules/<str:schedule_id>/" + VERBS, views.schedule_action, name="schedule_action"),
    path("triggers/", views.trigger_list, name="triggers"),
    path("triggers/new/", views.trigger_new, name="trigger_new"),
    path("triggers/<str:trigger_id>/", views.trigger_detail, name="trigger"),
    path("triggers/<str:trigger_id>/" + VERBS, views.trigger_action, name="trigger_action"),
]

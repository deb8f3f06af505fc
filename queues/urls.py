from django.urls import path

from . import api

urlpatterns = [
    path("events/<int:event_id>/queue/", api.QueueView.as_view(), name="queue"),
    path("events/<int:event_id>/queue/stats/", api.QueueStatsView.as_view(), name="queue-stats"),
    path("events/<int:event_id>/draw/", api.DrawView.as_view(), name="draw"),
    path("events/<int:event_id>/draw/entries/", api.DrawEntriesView.as_view(), name="draw-entries"),
    path("admissions/verify/", api.VerifyAdmissionView.as_view(), name="admission-verify"),
    path("admissions/release/", api.ReleaseAdmissionView.as_view(), name="admission-release"),
]

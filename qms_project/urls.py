"""URLs: pages, the API under /api/, JWKS, health, admin and login."""

from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_page
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenRefreshView

from events.views import EventViewSet
from queues import pages, probes
from queues.gate import views as gate_views
from queues.login_defence import PageLoginView, TokenLoginView

JAVASCRIPT_CATALOG_SECONDS = 300

router = DefaultRouter()
router.register("events", EventViewSet, basename="event")

urlpatterns = [
    path("admin/", admin.site.urls),
    # Both logins count failures, never successes (queues/login_defence.py); before django.contrib.auth's own.
    path("accounts/login/", PageLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/auth/token/", TokenLoginView.as_view(), name="token-obtain"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("api/", include("queues.operations_api")),  # one route per operator operation (queues/operations.py)
    path("api/", include("queues.urls")),
    path("api/", include("queues.webhooks.api")),  # webhook endpoints and the delivery log, staff
    path("api/", include("queues.access_codes_api")),  # an event's access codes (entry policy `codes`), staff
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path(".well-known/jwks.json", probes.jwks, name="jwks"),
    path("healthz", probes.healthz, name="healthz"),
    path("gate/auth", gate_views.auth, name="gate-auth"),  # forward auth for protected sites (queues/gate/)
    path("gate/revoke", gate_views.revoke, name="gate-revoke"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", probes.prometheus_metrics, name="metrics"),
    # Every arriving fan's page loads it, and it only changes with the language and a deploy: cached per language
    # (the cache key carries the active language) for a few minutes, not rendered per fan (~1 ms each).
    path("jsi18n/", cache_page(JAVASCRIPT_CATALOG_SECONDS)(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path("", pages.landing, name="landing"),
    path("events/<int:event_id>/waiting-room/", pages.waiting_room, name="waiting-room"),
    path("events/<int:event_id>/draw/", pages.draw_explained, name="draw-explained"),  # the fair draw, for anyone
    path("demo/reservation/", pages.demo_reservation, name="demo-reservation"),
]

# Under /api/ a path no route matches, or a crash, still answers JSON {code, detail}; HTML elsewhere.
handler404 = "queues.errors.page_not_found"
handler500 = "queues.errors.server_error"

import os

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("voronka.api.urls")),
    path("", include("voronka.compat_b24.urls")),  # the Bitrix24-compatible API at /rest/<user>/<secret>/<method>
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("voronka.intake.urls")),  # public form pages /f/<slug>/, Telegram webhooks /intake/telegram/…
    path("", include("voronka.ui.urls")),
]

if os.environ.get("VORONKA_BENCH") == "1":  # the bare baseline of `make bench` (scripts/bench.sh)
    urlpatterns.insert(0, path("bench/", include("voronka.benchsupport.urls")))

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


def _release():
    return {
        "env": settings.APP_ENV,
        "version": settings.APP_VERSION,
        "revision": settings.APP_REVISION,
    }


def _database_ok():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


@never_cache
@require_safe
def health(request):
    """200 {"status": "ok", ...} when the app can serve, 503 otherwise."""
    if settings.SAMPLE_FAIL_HEALTH:
        return JsonResponse(
            {"status": "failing", "reason": "SAMPLE_FAIL_HEALTH is set", **_release()},
            status=503,
        )
    try:
        ok = _database_ok()
    except Exception as exc:  # any database error means "not ready"
        logger.warning("health check: database unavailable: %s", exc)
        ok = False
    if not ok:
        return JsonResponse(
            {"status": "unavailable", "reason": "database query failed", **_release()},
            status=503,
        )
    return JsonResponse({"status": "ok", **_release()})


@require_safe
def index(request):
    return render(request, "sample/index.html", _release())

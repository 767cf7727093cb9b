from django.contrib import admin
from django.http import HttpResponse
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", lambda request: HttpResponse("ok\n", content_type="text/plain")),
    path("", lambda request: HttpResponse(
        '<!doctype html><title>shelf</title><link rel="stylesheet" href="/static/shelf/site.css"><h1>shelf</h1>\n')),
]

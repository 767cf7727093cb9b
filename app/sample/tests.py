from unittest import mock

from django.contrib.staticfiles import finders
from django.db.utils import OperationalError
from django.test import TestCase, override_settings

from . import settings as sample_settings


@override_settings(APP_ENV="test", APP_VERSION="1.2.3", APP_REVISION="abc1234")
class HealthTests(TestCase):
    def test_ok(self):
        response = self.client.get("/health/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(
            response.json(),
            {"status": "ok", "env": "test", "version": "1.2.3", "revision": "abc1234"},
        )
        self.assertIn("no-cache", response["Cache-Control"])

    @override_settings(SAMPLE_FAIL_HEALTH=True)
    def test_fail_flag(self):
        with self.assertLogs("django.request", "ERROR"):
            response = self.client.get("/health/")
        self.assertEqual(response.status_code, 503)
        body = response.json()
        self.assertEqual(body["status"], "failing")
        self.assertEqual(body["version"], "1.2.3")

    def test_database_down(self):
        with mock.patch("sample.views._database_ok", side_effect=OperationalError("gone")), \
                self.assertLogs("sample.views", "WARNING"), self.assertLogs("django.request", "ERROR"):
            response = self.client.get("/health/")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["status"], "unavailable")

    def test_head_allowed_post_refused(self):
        self.assertEqual(self.client.head("/health/").status_code, 200)
        with self.assertLogs("django.request", "WARNING"):
            self.assertEqual(self.client.post("/health/").status_code, 405)


@override_settings(APP_ENV="test", APP_VERSION="1.2.3", APP_REVISION="abc1234")
class PageTests(TestCase):
    def test_index(self):
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Hello from the dockyard sample app")
        self.assertContains(response, '<link rel="stylesheet" href="/static/sample/site.css">', html=False)
        self.assertContains(response, "1.2.3")

    def test_stylesheet_is_a_static_file(self):
        self.assertIsNotNone(finders.find("sample/site.css"))

    def test_unknown_page(self):
        with self.assertLogs("django.request", "WARNING"):
            self.assertEqual(self.client.get("/nope/").status_code, 404)


class SettingsHelperTests(TestCase):
    def test_env_bool(self):
        for value, expected in [("1", True), ("true", True), ("YES", True), ("on", True),
                                ("0", False), ("false", False), ("", False)]:
            with mock.patch.dict("os.environ", {"X_FLAG": value}):
                self.assertIs(sample_settings.env_bool("X_FLAG"), expected, value)
        with mock.patch.dict("os.environ", {}, clear=True):
            self.assertIs(sample_settings.env_bool("X_FLAG", True), True)

    def test_env_list(self):
        with mock.patch.dict("os.environ", {"X_HOSTS": " a.example , b.example,,"}):
            self.assertEqual(sample_settings.env_list("X_HOSTS", "*"), ["a.example", "b.example"])
        with mock.patch.dict("os.environ", {}, clear=True):
            self.assertEqual(sample_settings.env_list("X_HOSTS", "*"), ["*"])


class FixtureTests(TestCase):
    fixtures = ["groups"]  # what `inv app.loaddata` loads by default

    def test_groups_fixture(self):
        from django.contrib.auth.models import Group

        self.assertEqual(sorted(Group.objects.values_list("name", flat=True)), ["editors", "viewers"])

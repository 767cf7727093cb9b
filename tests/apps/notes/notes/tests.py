"""The app's own tests: python3 -m unittest -v notes.tests (they use the real database the MYSQL_* variables name)."""
import unittest
import uuid

from notes import store
from notes.web import app


class NotesTest(unittest.TestCase):
    def setUp(self):
        self.client = app.test_client()

    def test_health_answers_once_the_database_does(self):
        store.connect(wait=30).close()
        self.assertEqual(self.client.get("/healthz").status_code, 200)

    def test_a_note_added_is_listed(self):
        body = f"note {uuid.uuid4().hex[:8]}"
        self.assertEqual(self.client.post("/notes", data=body).status_code, 201)
        self.assertIn(body, self.client.get("/status.json").get_json()["notes"])
        self.assertIn(body, self.client.get("/").get_data(as_text=True))


if __name__ == "__main__":
    unittest.main()

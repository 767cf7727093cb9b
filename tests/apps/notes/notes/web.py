"""The web side: a page of notes, a JSON status for scripts, attachments stored on the volume, /healthz."""
import os

from flask import Flask, abort, jsonify, render_template_string, request

from notes import store

TITLE = "Notes"
PAGE = """<!doctype html><title>{{ title }}</title><h1>{{ title }}</h1>
<p>version {{ version }}</p>
<ul>{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
<p>workers: {% for name, count in workers.items() %}{{ name }} ran {{ count }} times; {% endfor %}</p>
<p>attachments: {{ files|join(", ") }}</p>
"""

app = Flask(__name__)


def version() -> str:
    return os.environ.get("DOCKYARD_VERSION") or os.environ.get("NOTES_VERSION", "dev")


def state() -> dict:
    db = store.connect()
    try:
        store.migrate(db)
        files = sorted(p.name for p in store.attachments().iterdir()) if store.attachments().is_dir() else []
        return {"title": TITLE, "version": version(), "notes": store.all_notes(db), "workers": store.workers(db),
                "files": files}
    finally:
        db.close()


@app.get("/healthz")
def healthz():
    try:
        store.connect().close()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is "not ready"
        return f"database not reachable: {exc}\n", 503
    return "ok\n"


@app.get("/")
def page():
    return render_template_string(PAGE, **state())


@app.get("/status.json")
def status():
    return jsonify(state())


@app.post("/notes")
def add():
    db = store.connect()
    try:
        store.migrate(db)
        store.add_note(db, request.get_data(as_text=True) or abort(400))
    finally:
        db.close()
    return "added\n", 201


@app.put("/attachments/<name>")
def attach(name: str):
    if "/" in name or name.startswith("."):
        abort(400)
    (store.attachments() / name).write_bytes(request.get_data())
    return "stored\n", 201

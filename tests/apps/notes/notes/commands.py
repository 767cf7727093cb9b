"""The image's commands: serve (the web app), work (the worker), check (can we reach the database?)."""
import os
import socket
import time

from notes import store


def serve() -> int:
    from notes.web import app

    app.run(host="0.0.0.0", port=int(os.environ.get("NOTES_PORT", "5000")), threaded=True)
    return 0


def work() -> int:
    """Every few seconds, record a beat as `<version>@<container>`: the page shows which workers ran."""
    from notes.web import version

    name = f"{version()}@{socket.gethostname()}"
    db = store.connect(wait=120)
    store.migrate(db)
    interval = float(os.environ.get("NOTES_WORKER_INTERVAL", "2"))
    print(f"worker {name} started", flush=True)
    while True:
        store.beat(db, name)
        time.sleep(interval)


def check() -> int:
    db = store.connect(wait=30)
    store.migrate(db)
    print(f"database ok: {len(store.all_notes(db))} notes", flush=True)
    return 0


COMMANDS = {"serve": serve, "work": work, "check": check}


def main(argv: list) -> int:
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: python3 -m notes {'|'.join(COMMANDS)}")
        return 2
    return COMMANDS[argv[0]]()

"""The notes database (MariaDB through PyMySQL) and the attachments directory (a named volume)."""
import os
import time
from pathlib import Path

import pymysql

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS beats (id INT AUTO_INCREMENT PRIMARY KEY, worker VARCHAR(200) NOT NULL,"
     " at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"),
)


def attachments() -> Path:
    return Path(os.environ.get("NOTES_ATTACHMENTS", "/var/lib/notes"))


def connect(wait: float = 0.0):
    """A connection to the database the MYSQL_* variables name, retried for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return pymysql.connect(host=os.environ.get("NOTES_DB_HOST", "mariadb"), user=os.environ["MYSQL_USER"],
                                   password=os.environ["MYSQL_PASSWORD"], database=os.environ["MYSQL_DATABASE"],
                                   connect_timeout=3, autocommit=True)
        except pymysql.err.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def migrate(db) -> None:
    with db.cursor() as cur:
        for statement in SCHEMA:
            cur.execute(statement)


def add_note(db, body: str) -> None:
    with db.cursor() as cur:
        cur.execute("INSERT INTO notes (body) VALUES (%s)", (body,))


def all_notes(db) -> list:
    with db.cursor() as cur:
        cur.execute("SELECT body FROM notes ORDER BY id")
        return [row[0] for row in cur.fetchall()]


def beat(db, worker: str) -> None:
    with db.cursor() as cur:
        cur.execute("INSERT INTO beats (worker) VALUES (%s)", (worker,))


def workers(db) -> dict:
    """How many times each worker has beaten."""
    with db.cursor() as cur:
        cur.execute("SELECT worker, COUNT(*) FROM beats GROUP BY worker ORDER BY worker")
        return {name: count for name, count in cur.fetchall()}

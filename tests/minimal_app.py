"""A small project unlike the sample, written for the tests: tasks.py, invoke.yaml, one compose file, a Dockerfile.

Its image's ``ENTRYPOINT`` is ``["python3"]`` and its CMD serves ``/`` with Python's ``http.server`` (no ``/health/``
route). It builds FROM the local base image, passed as a build arg, so no public registry is needed.
"""
from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

from conftest import PYTHON_BASE, SampleProject, free_port, git

TASKS_PY = """\
from pathlib import Path

import dockyard

ns = dockyard.namespace(Path(__file__).parent)
"""

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /srv
COPY site/ /srv/
ENTRYPOINT ["python3"]
CMD ["-m", "http.server", "8000"]
"""

COMPOSE = """\
services:
  web:
    build:
      context: ..
      dockerfile: docker/Dockerfile
      args:
        BASE_IMAGE: ${BASE_IMAGE}
    image: ${DOCKYARD_IMAGE}
    ports:
      - "127.0.0.1:${DOCKYARD_PORT}:8000"
"""


def make_minimal_project(dest: Path, *, app: str | None = None, dockerfile: str = DOCKERFILE,
                         compose: str = COMPOSE) -> SampleProject:
    app = app or f"m{uuid.uuid4().hex[:8]}"
    files = {
        "tasks.py": TASKS_PY,
        "docker/Dockerfile": dockerfile,
        "docker/compose.yml": compose,
        "site/index.html": "<p>minimal app</p>\n",
        "environments/dev/.env.example": "GREETING=\n",
        "environments/dev/.env": "GREETING=hello\n",
        ".gitignore": ".env\n__pycache__/\nreports/\n",
        ".dockerignore": "environments/\n",
        "invoke.yaml": textwrap.dedent(f"""\
            dockyard:
              app: {app}
              health_path: /
              image:
                repository: 127.0.0.1:5000/dockyard-test/{app}
                release_env: dev
                build_args: {{BASE_IMAGE: {PYTHON_BASE}}}
              environments:
                dev: {{compose: docker/compose.yml, port: {free_port()}, health_timeout: 60,
                       test_command: "python3 -c 'print(6 * 7)'"}}
                staging: {{}}
                prod: {{}}
            """),
    }
    for name, text in files.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(dest, "init", "-q", "-b", "main")
    project = SampleProject(dest, app)
    project.commit("initial")
    return project

"""CI provider configurations (CircleCI 2.1, GitHub Actions) rendered from jinja2 templates.

The templates live in ``dockyard/templates/ci/``; a project overrides one by putting a file of the same name in
its own ``templates/ci/``. Secrets appear only as references to the provider's secret store.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
OUTPUTS = {"circleci": ".circleci/config.yml", "github": ".github/workflows/dockyard.yml"}


def default_output(provider: str) -> str:
    return OUTPUTS[provider]


def glob_to_regex(pattern: str) -> str:
    """A tag glob (``v*``) as the anchored regular expression CircleCI filters take (``/^v.*$/``)."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return f"/^{body}$/"


def template_context(settings: Any, ci: Any) -> dict[str, Any]:
    return {
        "app": settings.app,
        "python_version": ci.python_version,
        "install_command": ci.install_command,
        "cache_dir": _relative(ci.cache_dir, settings.root),
        "reports_dir": _relative(ci.reports_dir, settings.root),
        "staging_branch": ci.staging_branch,
        "release_tag_pattern": ci.release_tag_pattern,
        "release_tag_regex": glob_to_regex(ci.release_tag_pattern),
        "staging_tasks": [t.replace("{version}", '"$DOCKYARD_VERSION"') for t in ci.staging_tasks],
        "release_tasks": [t.replace("{version}", '"$DOCKYARD_VERSION"') for t in ci.release_tasks],
        "secrets": list(ci.secrets),
        "aws_region": settings.aws_region,
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def render_config(settings: Any, ci: Any, provider: str) -> str:
    import jinja2

    loader = jinja2.FileSystemLoader([str(settings.root / "templates"), str(TEMPLATES)])
    # GitHub's ${{ ... }} expressions pass through untouched: the templates use [[ ]] for our own values.
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, variable_start_string="[[",
                             variable_end_string="]]")
    template = env.get_template(f"ci/{provider}.yml.j2")
    return template.render(**template_context(settings, ci))


def task_of(entry: str) -> str:
    """The task an ``inv`` invocation entry names: ``"publish {version} --env prod"`` -> ``publish``."""
    import shlex

    try:
        words = shlex.split(entry)
    except ValueError:
        words = entry.split()
    return words[0] if words else ""


def unknown_tasks(ci: Any, known: set[str]) -> list[tuple[str, str]]:
    """(setting key, task name) of every configured CI task that is not in ``known``."""
    return [(key, task_of(entry)) for key in ("staging_tasks", "release_tasks") for entry in getattr(ci, key)
            if task_of(entry) not in known]

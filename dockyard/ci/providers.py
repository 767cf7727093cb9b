"""CI provider configurations (CircleCI 2.1, GitHub Actions) rendered from jinja2 templates.

The templates live in ``dockyard/templates/ci/``; a project overrides one by putting a file of the same name in
its own ``templates/ci/``. Secrets appear only as references to the provider's secret store. What the jobs run
comes from :func:`dockyard.ci.pipeline.build_pipeline`; the templates only lay it out.
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


def template_context(settings: Any, ci: Any, pipeline: Any) -> dict[str, Any]:
    jobs = [j for j in (pipeline.staging, pipeline.release) if j is not None]
    secrets = [name for job in jobs for name in (*job.secrets, *(n for s in job.steps() for n in s.secrets))]
    return {
        "app": settings.app,
        "python_version": ci.python_version,
        "install_command": pipeline.install_command,
        "install_file": pipeline.install_file,
        "cache_dir": _relative(ci.cache_dir, settings.root),
        "reports_dir": _relative(ci.reports_dir, settings.root),
        "staging_branch": ci.staging_branch,
        "release_tag_pattern": ci.release_tag_pattern,
        "release_tag_regex": glob_to_regex(ci.release_tag_pattern),
        "staging": pipeline.staging,
        "release": pipeline.release,
        "jobs": jobs,
        "secrets": list(dict.fromkeys(secrets)),
        "aws_jobs": [j.name for j in jobs if j.aws],
        "aws_auth": pipeline.aws_auth,
        "github_role": pipeline.aws_role_arn or "${{ vars.AWS_ROLE_ARN }}",
        "github_region": pipeline.aws_region or "${{ vars.AWS_REGION }}",
        "aws_region": settings.aws_region,
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def yaml_text(text: str, indent: int = 10) -> str:
    """A string as YAML: a literal block for a script of several lines, else a JSON (double-quoted) scalar."""
    import json

    if "\n" not in text.rstrip("\n") or text.startswith((" ", "\t")):
        return json.dumps(text, ensure_ascii=False)
    pad = " " * indent
    body = "\n".join(pad + line if line else "" for line in text.rstrip("\n").split("\n"))
    return "|\n" + body


def render_config(settings: Any, ci: Any, pipeline: Any) -> str:
    import jinja2

    loader = jinja2.FileSystemLoader([str(settings.root / "templates"), str(TEMPLATES)])
    # GitHub's ${{ ... }} expressions pass through untouched: the templates use [[ ]] for our own values.
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, variable_start_string="[[",
                             variable_end_string="]]")
    env.filters["yaml_text"] = yaml_text
    template = env.get_template(f"ci/{pipeline.provider}.yml.j2")
    return template.render(**template_context(settings, ci, pipeline))

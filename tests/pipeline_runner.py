"""A small interpreter for generated CI files: runs a job's steps in order, as the provider would, on this machine.

What it does for each kind of step (and what it stands in for):

GitHub Actions (``.github/workflows/*.yml``)
- ``run:`` — executed for real with ``bash --noprofile --norc -eo pipefail`` (GitHub's default shell on Linux), in
  the workspace, with the job's and the step's ``env:`` (``${{ secrets.X }}`` / ``${{ vars.X }}`` replaced by the
  values given to the runner), the ``GITHUB_*`` variables of a push, and what earlier steps appended to
  ``$GITHUB_ENV`` (``NAME=value`` and ``NAME<<EOF`` forms) and ``$GITHUB_PATH``.
- ``actions/checkout`` — documented effect: the repository at ``GITHUB_SHA`` in ``GITHUB_WORKSPACE``; with
  ``fetch-depth: 0`` the whole history. Done here with a fresh ``git clone`` of the origin and a checkout of the
  commit (the branch is checked out as GitHub does for a push, so ``git`` sees the same commit).
- ``actions/setup-python`` — documented effect: a Python of the requested version first on ``PATH`` (``python``,
  ``python3``, ``pip``), pip's cache restored. Done here with a virtualenv of this machine's Python (3.11, the
  version the generated files ask for) whose site-packages fall back to the system's, so ``pip install -r
  requirements.txt`` finds every requirement already installed and needs no network. The cache is cold.
- ``aws-actions/configure-aws-credentials`` — documented effect: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN`` and ``AWS_REGION`` exported to the later steps, from the role the job's OIDC token may
  assume. Done here with the credentials the test hands in (``aws_credentials``), recording the role asked for.
- ``actions/cache`` / ``actions/upload-artifact`` — not run (a cold cache, no artifact store).

CircleCI 2.1 (``.circleci/config.yml``)
- ``run:`` — executed with ``/bin/bash -eo pipefail`` (CircleCI's default shell) with ``BASH_ENV`` pointing at the
  job's file, which bash itself sources before each step (CircleCI's mechanism), the context's variables (the
  secrets given to the runner) and the ``CIRCLE_*`` variables of a push.
- ``checkout`` — documented effect: the repository at ``CIRCLE_SHA1`` in the working directory (full clone).
- the ``machine`` executor's Python — the image ships Python 3 with pip on ``PATH``: the same virtualenv as above.
- ``restore_cache`` / ``save_cache`` / ``store_artifacts`` — not run (a cold cache, no artifact store).
- commands (``install``) are expanded in place, as CircleCI does.

``dockyard`` itself is found on ``PYTHONPATH`` (this checkout), as a project that vendors ``dockyard/`` would
find it: the test project's ``requirements.txt`` lists dockyard's dependencies, not dockyard.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class JobRun:
    steps: list[StepResult] = field(default_factory=list)
    workspace: Path | None = None
    home: Path | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    assumed_roles: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.returncode == 0 for s in self.steps)

    @property
    def output(self) -> str:
        return "\n".join(s.output for s in self.steps)

    def failed(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.returncode})\n{s.command}\n{s.output}" for s in self.steps
                         if s.returncode != 0)


class Machine:
    """A fresh runner: an empty HOME, a temp dir, a Python on PATH (created on first use)."""

    def __init__(self, root: Path, base_env: Mapping[str, str]) -> None:
        self.root = root
        self.home = root / "home"
        self.temp = root / "temp"
        self.venv = root / "python"
        for d in (self.home, self.temp):
            d.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in base_env.items() if not k.startswith(("GITHUB_", "CIRCLE", "INVOKE_",
                                                                          "SSH_AUTH_SOCK", "AWS_"))}
        self.env.update({"HOME": str(self.home), "CI": "true", "PIP_NO_INDEX": "1",
                         "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

    def python_on_path(self) -> None:
        if not self.venv.exists():
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                            str(self.venv)], check=True, capture_output=True)
        self.env["PATH"] = f"{self.venv / 'bin'}:{self.env.get('PATH', os.defpath)}"
        self.env["VIRTUAL_ENV"] = str(self.venv)

    def checkout(self, origin: Path, workspace: Path, sha: str, branch: str = "") -> None:
        """A branch push checks out the branch at the commit; a tag push, the commit detached (as both do)."""
        subprocess.run(["git", "clone", "--quiet", "--no-local", str(origin), str(workspace)], check=True,
                       capture_output=True)
        target = ["-B", branch, sha] if branch else ["--detach", sha]
        subprocess.run(["git", "checkout", "--quiet", *target], cwd=workspace, check=True, capture_output=True)

    def bash(self, argv: list[str], script: str, cwd: Path, env: Mapping[str, str], name: str) -> StepResult:
        path = self.temp / f"step-{len(list(self.temp.iterdir()))}.sh"
        path.write_text(script)
        proc = subprocess.run([*argv, str(path)], cwd=cwd, env=dict(env), capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL)
        return StepResult(name, script, proc.returncode, proc.stdout, proc.stderr)


# --- GitHub Actions -----------------------------------------------------------------------------------------------


def github_if(expression: str, context: Mapping[str, str]) -> bool:
    """The job conditions the generated workflow uses: ``github.ref == '...'`` and ``startsWith(github.ref, '...')``."""
    expression = expression.strip()
    if m := re.fullmatch(r"github\.(\w+)\s*==\s*'([^']*)'", expression):
        return context[m[1]] == m[2]
    if m := re.fullmatch(r"startsWith\(github\.(\w+),\s*'([^']*)'\)", expression):
        return context[m[1]].startswith(m[2])
    raise AssertionError(f"the interpreter does not know the condition {expression!r}")


def read_github_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        i += 1
    return values


class GithubRunner:
    def __init__(self, workflow: Mapping[str, Any], machine: Machine, *, secrets: Mapping[str, str],
                 variables: Mapping[str, str] = {}, aws_credentials: Mapping[str, str] | None = None) -> None:
        self.workflow = workflow
        self.machine = machine
        self.secrets = secrets
        self.variables = variables
        self.aws_credentials = aws_credentials

    def should_run(self, job: str, ref: str) -> bool:
        condition = self.workflow["jobs"][job].get("if")
        return condition is None or github_if(condition, {"ref": ref})

    def expand(self, text: str, github: Mapping[str, str]) -> str:
        def one(match: re.Match) -> str:
            kind, _, name = match[1].partition(".")
            if kind == "secrets":
                return self.secrets.get(name, "")
            if kind == "vars":
                return self.variables.get(name, "")
            if kind == "github" and name in github:
                return github[name]
            raise AssertionError(f"the interpreter cannot evaluate ${{{{ {match[1]} }}}}")

        return EXPRESSION.sub(one, text)

    def run(self, job_name: str, *, origin: Path, sha: str, ref: str) -> JobRun:
        job = self.workflow["jobs"][job_name]
        assert self.should_run(job_name, ref), f"job {job_name} does not run for {ref}"
        machine = self.machine
        workspace = machine.root / "work" / job_name
        files = {n: machine.temp / f"{n.lower()}-{job_name}" for n in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH",
                                                                        "GITHUB_STEP_SUMMARY")}
        ref_name = ref.split("/", 2)[2]
        github = {"ref": ref, "sha": sha, "ref_name": ref_name, "run_id": "4242", "workspace": str(workspace)}
        base = {**machine.env, "GITHUB_ACTIONS": "true", "GITHUB_SHA": sha, "GITHUB_REF": ref,
                "GITHUB_REF_NAME": ref_name, "GITHUB_REF_TYPE": "tag" if ref.startswith("refs/tags/") else "branch",
                "GITHUB_WORKSPACE": str(workspace), "GITHUB_RUN_ID": "4242", "GITHUB_ACTOR": "ci-bot",
                "RUNNER_TEMP": str(machine.temp), **{k: str(v) for k, v in files.items()}}
        job_env = {k: self.expand(str(v), github) for k, v in (job.get("env") or {}).items()}
        exported: dict[str, str] = {}
        result = JobRun(workspace=workspace, home=machine.home)
        for step in job["steps"]:
            name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
            uses = step.get("uses", "")
            if uses:
                branch = ref_name if ref.startswith("refs/heads/") else ""
                self.use(uses, step.get("with") or {}, origin, workspace, sha, branch, exported, result, github)
                continue
            if "if" in step and step["if"] != "always()":
                raise AssertionError(f"the interpreter does not know the step condition {step['if']!r}")
            env = {**base, **job_env, **exported,
                   **{k: self.expand(str(v), github) for k, v in (step.get("env") or {}).items()}}
            env["PATH"] = ":".join([*reversed(files["GITHUB_PATH"].read_text().split()), env["PATH"]]) \
                if files["GITHUB_PATH"].exists() else env["PATH"]
            outcome = machine.bash(["bash", "--noprofile", "--norc", "-eo", "pipefail"],
                                   self.expand(step["run"], github), workspace, env, name)
            result.steps.append(outcome)
            exported.update(read_github_env(files["GITHUB_ENV"]))
            if outcome.returncode != 0:
                break
        result.outputs = read_github_env(files["GITHUB_OUTPUT"])
        if files["GITHUB_STEP_SUMMARY"].exists():
            result.summary = files["GITHUB_STEP_SUMMARY"].read_text()
        return result

    def use(self, uses: str, with_: Mapping[str, Any], origin: Path, workspace: Path, sha: str, branch: str,
            exported: dict[str, str], result: JobRun, github: Mapping[str, str]) -> None:
        action = uses.split("@", 1)[0]
        if action == "actions/checkout":
            assert str(with_.get("fetch-depth", 1)) in ("0", "1")
            self.machine.checkout(origin, workspace, sha, branch)
        elif action == "actions/setup-python":
            assert str(with_.get("python-version")) == f"{sys.version_info.major}.{sys.version_info.minor}", with_
            self.machine.python_on_path()
            base_path = self.machine.env["PATH"]
            exported["PATH"] = base_path
        elif action == "aws-actions/configure-aws-credentials":
            assert self.aws_credentials is not None, "this test gives the job no AWS credentials"
            result.assumed_roles.append(self.expand(str(with_.get("role-to-assume", "")), github))
            exported.update(self.aws_credentials)
            exported["AWS_REGION"] = exported["AWS_DEFAULT_REGION"] = self.expand(str(with_["aws-region"]), github)
        elif action in ("actions/cache", "actions/upload-artifact"):
            pass
        else:
            raise AssertionError(f"the interpreter does not know the action {uses}")


# --- CircleCI -------------------------------------------------------------------------------------------------------


class CircleRunner:
    def __init__(self, config: Mapping[str, Any], machine: Machine, *, context: Mapping[str, str]) -> None:
        self.config = config
        self.machine = machine
        self.context = context

    def workflow_job(self, name: str) -> Mapping[str, Any]:
        for entry in self.config["workflows"]["dockyard"]["jobs"]:
            key = entry if isinstance(entry, str) else next(iter(entry))
            if key == name:
                return {} if isinstance(entry, str) else entry[key]
        raise AssertionError(f"job {name} is not in the workflow")

    def should_run(self, name: str, *, branch: str = "", tag: str = "") -> bool:
        filters = self.workflow_job(name).get("filters") or {}
        branches, tags = filters.get("branches") or {}, filters.get("tags") or {}

        def matches(rule: Any, value: str) -> bool:
            rules = rule if isinstance(rule, list) else [rule]
            for r in rules:
                r = str(r)
                if r.startswith("/") and r.endswith("/") and re.fullmatch(r[1:-1], value):
                    return True
                if r == value:
                    return True
            return False

        if tag:
            return "only" in tags and matches(tags["only"], tag)
        if "only" in branches and not matches(branches["only"], branch):
            return False
        return not ("ignore" in branches and matches(branches["ignore"], branch))

    def steps_of(self, steps: list[Any]) -> list[Any]:
        out = []
        for step in steps:
            name = step if isinstance(step, str) else next(iter(step))
            if name in (self.config.get("commands") or {}):
                out += self.steps_of(self.config["commands"][name]["steps"])
            else:
                out.append(step)
        return out

    def run(self, job_name: str, *, origin: Path, sha: str, branch: str = "", tag: str = "") -> JobRun:
        assert self.should_run(job_name, branch=branch, tag=tag), f"job {job_name} does not run here"
        job = self.config["jobs"][job_name]
        assert "machine" in self.config["executors"][job["executor"]]
        machine = self.machine
        machine.python_on_path()  # the machine image's Python 3 with pip
        workspace = machine.root / "work" / job_name
        bash_env = machine.temp / f"bash-env-{job_name}"
        bash_env.write_text("")
        env = {**machine.env, **self.context, "CIRCLECI": "true", "CIRCLE_SHA1": sha, "CIRCLE_BUILD_NUM": "77",
               "CIRCLE_WORKING_DIRECTORY": str(workspace), "CIRCLE_USERNAME": "ci-bot", "BASH_ENV": str(bash_env),
               **({"CIRCLE_BRANCH": branch} if branch else {}), **({"CIRCLE_TAG": tag} if tag else {})}
        result = JobRun(workspace=workspace, home=machine.home)
        for step in self.steps_of(job["steps"]):
            name = step if isinstance(step, str) else next(iter(step))
            if name == "checkout":
                machine.checkout(origin, workspace, sha, branch)
            elif name == "run":
                body = step["run"]
                command = body if isinstance(body, str) else body["command"]
                outcome = machine.bash(["/bin/bash", "-eo", "pipefail"], command, workspace, env,
                                       body.get("name", command[:40]) if isinstance(body, dict) else command[:40])
                result.steps.append(outcome)
                if outcome.returncode != 0:
                    break
            elif name in ("restore_cache", "save_cache", "store_artifacts"):
                pass
            else:
                raise AssertionError(f"the interpreter does not know the step {name}")
        return result

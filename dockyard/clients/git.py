"""git, through the runner: read-only queries here; the release feature adds what changes a repository."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DockyardError
from ..runner import Command, Result, Runner


@dataclass(frozen=True)
class Revision:
    sha: str
    dirty: bool
    committed: str  # ISO 8601 commit time: the image's `created`, so an unchanged commit builds the same image

    @property
    def short(self) -> str:
        return self.sha[:7]

    @property
    def label(self) -> str:
        return self.short + ("-dirty" if self.dirty else "")


class GitClient:
    def __init__(self, runner: Runner, root: Path) -> None:
        self.runner = runner
        self.root = root

    def git(self, *args: str, check: bool = True) -> Result:
        return self.runner.run(Command(("git", *args), cwd=self.root), check=check)

    def is_repository(self) -> bool:
        return self.git("rev-parse", "--git-dir", check=False).ok

    def revision(self) -> Revision:
        head = self.git("rev-parse", "HEAD", check=False)
        if not head.ok:
            raise DockyardError(f"{self.root} is not a git repository with a commit; run `git init` and commit")
        log = self.git("log", "-1", "--format=%cI")
        return Revision(sha=head.stdout.strip(), dirty=bool(self.changed_files()), committed=log.stdout.strip())

    def changed_files(self) -> list[str]:
        out = self.git("status", "--porcelain", "--untracked-files=normal").stdout
        return [line[3:] for line in out.splitlines() if line.strip()]

    def remote_url(self, remote: str) -> str:
        result = self.git("remote", "get-url", remote, check=False)
        return result.stdout.strip() if result.ok else ""

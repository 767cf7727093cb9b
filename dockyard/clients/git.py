"""git, through the runner: read-only queries here; the release feature adds what changes a repository."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DockyardError, Unreachable
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

    # --- used by releases -----------------------------------------------------------------------------------

    def current_branch(self) -> str:
        """The checked-out branch; "" when HEAD is detached."""
        result = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return result.stdout.strip() if result.ok else ""

    def commit_of(self, ref: str) -> str:
        """The commit ``ref`` names, or "" when there is none."""
        result = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return result.stdout.strip() if result.ok else ""

    def object_of(self, ref: str) -> str:
        result = self.git("rev-parse", "--verify", "--quiet", ref, check=False)
        return result.stdout.strip() if result.ok else ""

    def fetch(self, remote: str) -> None:
        """Fetch branches and tags of ``remote``; a failure is reported, never hidden."""
        if not self.remote_url(remote):
            raise DockyardError(
                f"git remote {remote!r} is not configured: add it (`git remote add {remote} URL`) "
                f"or set dockyard.git.remote"
            )
        result = self.git("fetch", "--quiet", "--tags", remote, check=False)
        if not result.ok:
            said = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unreachable(f"`git fetch {remote}` failed ({said}): fix the remote or the network, then retry")

    def remote_refs(self, remote: str) -> dict[str, str]:
        """``refs/tags/...`` and ``refs/heads/...`` on the remote -> the object each names (tags unpeeled)."""
        result = self.git("ls-remote", "--tags", "--heads", remote, check=False)
        if not result.ok:
            said = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unreachable(f"`git ls-remote {remote}` failed ({said}): fix the remote or the network, then retry")
        refs: dict[str, str] = {}
        for line in result.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            if ref and not ref.endswith("^{}"):
                refs[ref] = sha
        return refs

    def tags(self, prefix: str = "", *, merged: str = "") -> list[TagInfo]:
        """Tags named ``<prefix>*``; with ``merged``, only those reachable from that revision."""
        fmt = "%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(creatordate:iso-strict)"
        argv = ["for-each-ref", f"--format={fmt}"] + ([f"--merged={merged}"] if merged else [])
        out = self.git(*argv, f"refs/tags/{prefix}*" if prefix else "refs/tags").stdout
        found = []
        for line in out.splitlines():
            name, obj, peeled, date = (line.split("\0") + ["", "", "", ""])[:4]
            found.append(TagInfo(name=name, object=obj, commit=peeled or obj, date=date))
        return found

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).ok

    def commits(self, revisions: str) -> list[tuple[str, str, str]]:
        """(sha, subject, author) of ``git log REVISIONS``, newest first."""
        out = self.git("log", "--format=%H%x00%s%x00%an", revisions, "--").stdout
        return [tuple(line.split("\0", 2)) for line in out.splitlines() if line]  # type: ignore[misc]

    def common_dir(self) -> Path:
        """The repository's git directory shared by all worktrees (``.git`` for a plain clone)."""
        text = self.git("rev-parse", "--git-common-dir").stdout.strip()
        path = Path(text)
        return path if path.is_absolute() else (self.root / path).resolve()

    def create_branch(self, name: str, commit: str) -> None:
        self.runner.run(branch_command(self.root, name, commit))

    def create_tag(self, name: str, commit: str, message: str) -> None:
        self.runner.run(tag_command(self.root, name, commit, message))

    def push(self, remote: str, refspecs: tuple[str, ...] | list[str]) -> None:
        result = self.runner.run(push_command(self.root, remote, refspecs), check=False)
        if not result.ok:
            said = " | ".join(line.strip() for line in (result.stderr + result.stdout).strip().splitlines()[-3:])
            raise DockyardError(f"`git push {remote}` of {', '.join(refspecs)} failed: {said}")


# --- what the release feature adds: pure builders, then queries and changes ---------------------------------------


def branch_command(root: Path, name: str, commit: str) -> Command:
    return Command(("git", "branch", "--no-track", name, commit), cwd=root)


def tag_command(root: Path, name: str, commit: str, message: str) -> Command:
    """An annotated tag whose message arrives on stdin (a changelog may hold any character)."""
    return Command(("git", "tag", "--annotate", "--cleanup=verbatim", "--file", "-", name, commit), stdin=message,
                   cwd=root)


def push_command(root: Path, remote: str, refspecs: tuple[str, ...] | list[str]) -> Command:
    """Push exactly these refs (``refs/tags/v1.2.3``, ``refs/heads/release-v1.2``), atomically; never ``--tags``."""
    return Command(("git", "push", "--atomic", "--porcelain", remote, *(f"{r}:{r}" for r in refspecs)), cwd=root)


@dataclass(frozen=True)
class TagInfo:
    name: str
    object: str  # the tag object (annotated) or the commit (lightweight)
    commit: str
    date: str  # ISO 8601: the tagger's date, or the commit's for a lightweight tag

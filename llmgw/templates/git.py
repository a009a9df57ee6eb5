"""Reading prompt templates out of a git repository with git itself (no network, no library).

Every ref (branches, tags, HEAD) is read in one ``git show-ref`` call into an in-memory snapshot
that a background refresher swaps atomically; resolving a name on the request path is a dict
lookup, never a git process. File contents are read by commit and path with ``git cat-file``,
which is immutable, so a version can be cached forever once read.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

HEX = re.compile(r"^[0-9a-f]{4,40}$")


class GitError(Exception):
    """git failed or the object does not exist."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode  # None: git did not run


@dataclass(frozen=True, slots=True)
class RefSnapshot:
    """Every ref name (``HEAD``, ``refs/heads/x``, ``refs/tags/y``) mapped to its commit."""

    refs: dict[str, str]

    def lookup(self, name: str) -> str | None:
        for candidate in (name, f"refs/tags/{name}", f"refs/heads/{name}", f"refs/remotes/{name}"):
            commit = self.refs.get(candidate)
            if commit is not None:
                return commit
        return None


@dataclass(frozen=True, slots=True)
class Blob:
    sha: str
    text: str


class GitRepo:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _git(self, *args: str, input: bytes | None = None) -> bytes:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.root), *args],
                input=input,
                capture_output=True,
                timeout=30,
                check=False,
                env={"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/local/bin"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]} failed: {exc}") from exc
        if done.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}", done.returncode)
        return done.stdout

    def toplevel(self) -> Path:
        return Path(self._git("rev-parse", "--show-toplevel").decode().strip())

    def snapshot(self) -> RefSnapshot:
        """All refs, annotated tags peeled to their commits (one git process).

        Only "no refs" (exit 1: a repository without commits) is an empty snapshot; a repository
        that cannot be read raises, so the caller keeps the refs it last read instead of
        forgetting every label and branch while a deploy replaces the checkout."""
        try:
            out = self._git("show-ref", "--head", "--dereference").decode()
        except GitError as exc:
            if exc.returncode == 1:
                return RefSnapshot({})  # an empty repository has no refs yet
            raise
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            if name.endswith("^{}"):
                refs[name[:-3]] = sha  # the peeled commit of an annotated tag wins
            else:
                refs.setdefault(name, sha)
        return RefSnapshot(refs)

    def resolve_commit(self, name: str) -> str:
        """A commit id for any revision git understands (short ids, ``main~2``)."""
        return self._git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").decode().strip()

    def read(self, commit: str, path: str) -> Blob | None:
        """The file at ``path`` in ``commit``, or None if it does not exist there."""
        out = self._git("cat-file", "--batch", input=f"{commit}:{path}\n".encode())
        header, _, rest = out.partition(b"\n")
        parts = header.split()
        if len(parts) < 3 or parts[1] != b"blob":
            return None
        size = int(parts[2])
        return Blob(parts[0].decode(), rest[:size].decode("utf-8"))

    def list_files(self, commit: str, directory: str) -> list[str]:
        """Paths of every file under ``directory`` in ``commit``, relative to ``directory``."""
        prefix = directory.rstrip("/") + "/" if directory not in ("", ".") else ""
        try:
            out = self._git("ls-tree", "-r", "--name-only", commit, "--", prefix or ".").decode()
        except GitError:
            return []
        return [line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix)]

    def log(self, path: str, limit: int = 20) -> list[tuple[str, str, str]]:
        """``(commit, date, subject)`` of the latest commits touching ``path``."""
        out = self._git("log", f"-{limit}", "--format=%H%x09%cs%x09%s", "--", path).decode()
        # three fields a line, as the --format above writes them (mypy cannot count a split)
        return [tuple(line.split("\t", 2)) for line in out.splitlines() if line]  # type: ignore[misc]

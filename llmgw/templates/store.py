"""Addressing, resolving and caching template versions.

``id`` uses the configured default ref, ``id@<commit|tag|branch>`` a git revision, and
``id@<label>`` a label mapped to a ref in config (``templates.labels``) or, failing that, a tag of
that name: promotion is moving a tag, rollback is moving it back. Names resolve against an
in-memory snapshot of the refs (refreshed in the background), so a request never waits on git
unless it names a commit by a short id never seen before. Compiled templates are cached by the
blob hashes of the file and its includes, so an unchanged template is compiled once across commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmgw.config import ExperimentConfig, TemplatesConfig
from llmgw.errors import GatewayError, InvalidRequest, NotFound, TemplateProblem
from llmgw.templates.git import HEX, Blob, GitError, GitRepo, RefSnapshot
from llmgw.templates.template import (
    CompiledTemplate,
    new_environment,
    parse_file,
    referenced_templates,
)

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Address:
    id: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str, version: str | None = None) -> Address:
        template_id, at, ref = text.rpartition("@")
        if at and template_id:
            return cls(template_id.strip("/"), ref or None)
        return cls(text.strip("/"), version)

    def __str__(self) -> str:
        return f"{self.id}@{self.version}" if self.version else self.id


class Source(Protocol):
    """Where template files come from: a git commit, or the working tree (for ``prompts check``)."""

    name: str

    def read(self, path: str) -> Blob | None: ...


@dataclass(slots=True)
class CommitSource:
    repo: GitRepo
    name: str  # the commit id

    def read(self, path: str) -> Blob | None:
        return self.repo.read(self.name, path)


@dataclass(slots=True)
class WorkingTreeSource:
    root: Path
    name: str = "working-tree"

    def read(self, path: str) -> Blob | None:
        file = self.root / path
        if not file.is_file():
            return None
        data = file.read_bytes()
        sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's own blob id
        return Blob(sha, data.decode("utf-8"))


def load_template(source: Source, directory: str, template_id: str, max_chars: int) -> CompiledTemplate:
    """Read a template and everything it includes from one source, and compile it."""
    prefix = f"{directory.strip('/')}/" if directory not in ("", ".") else ""
    blob = None
    for suffix in SUFFIXES:
        blob = source.read(f"{prefix}{template_id}{suffix}")
        if blob is not None:
            break
    if blob is None:
        raise NotFound(f"no template {template_id!r} at {source.name[:12]}", code="prompt_not_found")
    spec = parse_file(blob.text, template_id)
    sources: dict[str, str] = {}
    blobs = [blob.sha]
    probe = new_environment({})
    pending = [m.content for m in spec.messages]
    while pending:
        for name in referenced_templates(probe, pending.pop(), template_id):
            if name in sources:
                continue
            included = source.read(prefix + name)
            if included is None:
                raise TemplateProblem(f"template {template_id}: included file {name!r} does not exist")
            sources[name] = included.text
            blobs.append(f"{name}:{included.sha}")
            pending.append(included.text)
    env = new_environment(sources)
    try:
        compiled = [(m.role, env.from_string(m.content)) for m in spec.messages]
    except Exception as exc:  # noqa: BLE001 - jinja raises several types for a bad template
        raise TemplateProblem(f"template {template_id}: {exc}") from None
    return CompiledTemplate(template_id, source.name, ",".join(blobs), spec, compiled, max_chars)


class PromptStore:
    def __init__(self, config: TemplatesConfig) -> None:
        self.config = config
        self.repo = GitRepo(config.repo)
        self.refs = RefSnapshot({})
        self._revisions: dict[str, str] = {}  # short ids and other revisions → commit (immutable)
        self._by_version: OrderedDict[tuple[str, str], CompiledTemplate] = OrderedDict()
        self._by_blobs: dict[str, CompiledTemplate] = {}
        self._lock = threading.Lock()

    # --- refs --------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every ref (blocking, one git process); swapped in atomically."""
        self.refs = self.repo.snapshot()

    def missing_arms(self, experiments: dict[str, ExperimentConfig]) -> list[str]:
        """Each enabled experiment arm whose version or template cannot be found in the repository
        (blocking: git), as ``"<experiment>.<arm>: <why>"``. Such an arm would answer 404 for its
        share of traffic; found at start-up it is a warning instead of a surprise."""
        problems = []
        for name, experiment in experiments.items():
            if not experiment.enabled:
                continue
            for arm in experiment.arms:
                try:
                    self.get_sync(Address(experiment.template, arm.version))
                except GatewayError as exc:
                    problems.append(f"{name}.{arm.name}: {exc.message}")
        return problems

    def resolve_cached(self, version: str | None) -> str | None:
        """A commit for a version using only memory; None when git must be asked.

        A full commit id is not taken on trust: one that names no commit here must answer
        ``prompt_version_not_found``, not "no template at <id>", so git verifies it once (then
        it is remembered in ``_revisions`` like a short id)."""
        name = version or self.config.default_ref
        name = self.config.labels.get(name, name)
        commit = self.refs.lookup(name)
        if commit is not None:
            return commit
        return self._revisions.get(name)

    def resolve_slow(self, version: str | None) -> str:
        name = version or self.config.default_ref
        name = self.config.labels.get(name, name)
        try:
            commit = self.repo.resolve_commit(name)
        except GitError:
            raise NotFound(f"unknown prompt version {name!r}", code="prompt_version_not_found") from None
        if HEX.match(name):
            self._revisions[name] = commit  # a commit id never changes meaning; branch names do
        return commit

    # --- templates ---------------------------------------------------------------------------

    def cached(self, commit: str, template_id: str) -> CompiledTemplate | None:
        return self._by_version.get((commit, template_id))

    def load(self, commit: str, template_id: str) -> CompiledTemplate:
        """Read and compile (blocking); reuse the compiled form when the blobs are unchanged."""
        try:
            fresh = load_template(
                CommitSource(self.repo, commit), self.config.dir, template_id, self.config.max_output_chars
            )
        except GitError:
            raise NotFound(f"unknown prompt version {commit!r}", code="prompt_version_not_found") from None
        with self._lock:
            shared = self._by_blobs.get(fresh.blob)
            template = (
                CompiledTemplate(template_id, commit, shared.blob, shared.spec, shared.compiled, shared.max_chars)
                if shared is not None
                else fresh
            )
            self._by_blobs.setdefault(fresh.blob, fresh)
            self._by_version[(commit, template_id)] = template
            while len(self._by_version) > self.config.cache_size:
                self._by_version.popitem(last=False)
            if len(self._by_blobs) > self.config.cache_size:
                self._by_blobs.clear()
        return template

    async def get(self, address: Address) -> CompiledTemplate:
        if not address.id or ".." in address.id.split("/"):
            raise InvalidRequest(f"invalid template id {address.id!r}", param="llmgw.prompt.id")
        commit = self.resolve_cached(address.version)
        if commit is None:
            commit = await asyncio.to_thread(self.resolve_slow, address.version)
        template = self.cached(commit, address.id)
        if template is None:
            template = await asyncio.to_thread(self.load, commit, address.id)
        return template

    def get_sync(self, address: Address) -> CompiledTemplate:
        """Blocking :meth:`get`, for the CLI."""
        commit = self.resolve_cached(address.version) or self.resolve_slow(address.version)
        return self.cached(commit, address.id) or self.load(commit, address.id)

    def list_ids(self, commit: str) -> list[str]:
        prefix = self.config.dir
        return sorted(
            path.rsplit(".", 1)[0]
            for path in self.repo.list_files(commit, prefix)
            if path.endswith(SUFFIXES) and not path.startswith(("_", "partials/"))
        )


def variables_from(extra: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The template's variables: the ``prompt_variables`` option, overridden by ``prompt.variables``."""
    return {**extra, **own}


def variable_paths(variables: dict[str, Any], own: dict[str, Any]) -> dict[str, str]:
    """Where the client wrote each variable, for an error's ``param``: ``prompt.variables`` (``own``)
    wins over ``prompt_variables`` (the option or its ``x-llmgw-prompt-variables`` header), as in
    :func:`variables_from`."""
    return {
        name: f"llmgw.prompt.variables.{name}" if name in own else f"llmgw.prompt_variables.{name}"
        for name in variables
    }

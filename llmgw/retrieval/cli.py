"""``llmgw ingest`` and ``llmgw retrieval``: fill a collection's store, look inside it.

llmgw ingest COLLECTION [PATHS...] [--rebuild]    # idempotent: only changed documents are embedded
llmgw retrieval list
llmgw retrieval search COLLECTION "question" [-k 5] [--mode hybrid|dense|bm25] [--filter field=value]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from llmgw.retrieval.collection import CollectionError, list_collections


def _config(args: argparse.Namespace) -> Any:
    from llmgw.config import load_config_or_exit

    return load_config_or_exit(getattr(args, "config", None) or os.environ.get("LLMGW_CONFIG"))


def _collections_dir(args: argparse.Namespace) -> str:
    return _config(args).retrieval.collections_dir


def _open(args: argparse.Namespace) -> Any:
    """The collection named on the command line, or None after saying why."""
    from llmgw.retrieval.service import open_collection

    try:
        return open_collection(_collections_dir(args), args.collection)
    except CollectionError as exc:
        print(f"llmgw: {exc}", file=sys.stderr)
        return None
    except Exception as exc:  # noqa: BLE001 - a store or embedder that cannot start (no URL, no model): no traceback
        print(f"llmgw: {args.collection}: cannot open the collection: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _screener(args: argparse.Namespace) -> Any:
    """What ``llmgw ingest`` screens new chunks with: the gateway's injection detector at the default
    policy's action threshold for retrieved passages; None when guards are off, the policy does not scan
    retrieved passages, or ``--no-screen``."""
    from llmgw.guards.runtime import configured_policies, injection_detector
    from llmgw.retrieval.screening import screen

    guards = _config(args).guards
    if args.no_screen or not guards.enabled:
        return None
    policy = configured_policies(guards).get(guards.default_policy)
    if policy is None or not policy.injection.scans("retrieved"):
        return None
    detector = injection_detector()
    threshold = policy.injection.cutoffs("retrieved", detector.operating_points("retrieved"))[1]
    return lambda chunks: screen(chunks, detector, threshold)


def _failed(name: str, what: str, exc: Exception) -> int:
    """A store or embedding API that fails is a message and exit status 1, not a traceback."""
    print(f"llmgw: {name}: {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


def cmd_ingest(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmgw.retrieval.chunking import model_tokenizer, word_tokenize
    from llmgw.retrieval.documents import SourceError, read_sources
    from llmgw.retrieval.ingest import ingest

    collection = _open(args)
    if collection is None:
        return 2
    spec = collection.spec
    paths = [str(Path(p).resolve()) for p in args.paths] or None
    if paths is None and not spec.sources:
        print(f"llmgw: collection {spec.name!r} declares no sources; name the files to ingest", file=sys.stderr)
        return 2
    if args.rebuild and spec.store.kind != "opensearch":
        print(
            "llmgw: --rebuild is for OpenSearch stores (a local store is updated in place, a document at a time)",
            file=sys.stderr,
        )
        return 2
    try:
        documents = list(read_sources(spec.sources, Path(spec.root), paths))
    except (SourceError, OSError) as exc:
        print(f"llmgw: {exc}", file=sys.stderr)
        return 2
    tokenize = model_tokenizer(spec.embedding.model) if spec.embedding.provider == "local" else word_tokenize
    screen = _screener(args)
    store: Any = collection.store
    if spec.store.kind == "opensearch":
        try:
            store.ensure()
            if args.rebuild:
                print(f"building a new index {store.begin_rebuild()} behind {store.alias}")
        except Exception as exc:  # noqa: BLE001 - the cluster's client raises its own types
            return _failed(spec.name, "the store could not be prepared", exc)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        disable=args.quiet or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(f"ingest {spec.name}", total=len(documents), chunks=0)
        done = {"chunks": 0}

        def progress(docs: int, chunks: int) -> None:
            done["chunks"] += chunks
            bar.update(task, advance=docs, chunks=done["chunks"])

        try:
            summary = ingest(
                spec,
                store,
                collection.embedder,
                tokenize,
                documents,
                prune=paths is None,
                progress=progress,
                screen=screen,
            )
        except KeyboardInterrupt:
            print("\ninterrupted: the documents written so far are complete; run again to finish", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - stores and embedding APIs raise their own types
            return _failed(spec.name, "ingest stopped (the documents written so far are complete; run again)", exc)
    try:
        if spec.store.kind == "opensearch" and args.rebuild:
            store.finish_rebuild()
        else:
            store.refresh()  # builds (and caches) the search snapshot now, not on the gateway's first request
    except Exception as exc:  # noqa: BLE001
        return _failed(spec.name, "the ingested documents are stored, but the store could not be refreshed", exc)
    for error in summary.errors:
        print(f"warning: {error}", file=sys.stderr)
    print(f"{spec.name}: {summary.line()}")
    for chunk_id in summary.flagged:
        print(f"flagged: {chunk_id} reads like an instruction to a model (the retrieval guard will act on it)")
    if paths is not None:
        print("(PATHS given: documents not among them were left alone; run without PATHS to remove deleted ones)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    directory = _collections_dir(args)
    names = list_collections(directory)
    if not names:
        print(f"no collections in {directory}/")
    for name in names:
        print(name)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    collection = _open(args)
    if collection is None:
        return 2
    filters: dict[str, Any] = {}
    for item in args.filter or []:
        field, sep, value = item.partition("=")
        if not sep or not field:  # "kind" alone used to filter on kind == "": nothing matched, silently
            print(f"llmgw: --filter {item!r}: expected field=value", file=sys.stderr)
            return 2
        filters[field] = value
    try:
        hits = collection.search(args.query, args.k, filters, args.tenant, 0.0, args.mode)
    except Exception as exc:  # noqa: BLE001 - stores and embedding APIs raise their own types
        return _failed(args.collection, "search failed", exc)
    for n, hit in enumerate(hits, 1):
        out = {"n": n, **hit.public(), "dense": hit.dense, "bm25": hit.bm25}
        print(json.dumps(out, ensure_ascii=False))
        if args.text:
            print("   " + hit.chunk.text.replace("\n", "\n   ")[:1200])
    return 0


def _positive(text: str) -> int:
    """``-k``: a whole number ≥ 1 (0 used to fall back to the collection's k, and a negative one
    to cut the best hits off the end of the list)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def register(sub: Any) -> None:
    ingest = sub.add_parser("ingest", help="chunk, embed and store a collection's documents (idempotent)")
    ingest.add_argument("collection")
    ingest.add_argument("paths", nargs="*", help="files or folders to ingest instead of the collection's sources")
    ingest.add_argument("--config", help="gateway config (default: $LLMGW_CONFIG or embedded)")
    ingest.add_argument("--rebuild", action="store_true", help="OpenSearch: fill a new index, then swap the alias")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.add_argument(
        "--no-screen", action="store_true", help="do not score new chunks for hidden instructions (the guard will)"
    )
    ingest.set_defaults(func=cmd_ingest)

    retrieval = sub.add_parser("retrieval", help="collections: list, search")
    retrieval.add_argument("--config", help="gateway config (default: $LLMGW_CONFIG or embedded)")
    commands = retrieval.add_subparsers(dest="retrieval_command", required=True)
    listing = commands.add_parser("list", help="the collections defined in retrieval.collections_dir")
    listing.set_defaults(func=cmd_list)
    search = commands.add_parser("search", help="search a collection as the gateway would")
    search.add_argument("collection")
    search.add_argument("query")
    search.add_argument("-k", type=_positive, default=5, help="passages shown (at least 1)")
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"])
    search.add_argument("--filter", action="append", help="field=value (repeatable)")
    search.add_argument("--tenant", help="search as this tenant (collections with tenant_field)")
    search.add_argument("--text", action="store_true", help="print each passage's text")
    search.set_defaults(func=cmd_search)

"""A collection's definition: ``retrieval/<name>.yaml``, versioned in git with the rest of the config.

One file says where the documents come from, how they are chunked, which embedding model turns
them into vectors and which store holds them. Errors name the file and the dotted key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: ``\Z``, not ``$``: ``$`` also matches before a final newline, which let "kb<newline>" through
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(Strict):
    path: str = Field(description="a file, folder or glob, relative to the collection file's folder")
    format: Literal["auto", "txt", "md", "html", "jsonl"] = "auto"
    metadata: dict[str, str | int | float | bool] = Field({}, description="added to every chunk of this source")
    #: jsonl: the fields holding the id, title and text of each record (the rest becomes metadata)
    id_field: str = "id"
    title_field: str = "title"
    text_field: str = "text"


class ChunkingSpec(Strict):
    max_tokens: int = Field(200, ge=16, le=2048, description="chunk size in the embedding model's tokens")
    overlap_tokens: int = Field(32, ge=0, description="tokens repeated from the end of the previous chunk")
    follow_structure: bool = Field(True, description="split at markdown headings and HTML blocks first")


class EmbeddingSpec(Strict):
    provider: Literal["local", "openai", "bedrock"] = "local"
    model: str | None = Field(None, description="local: a model path (default all-MiniLM-L6-v2); else the model id")
    base_url: str | None = Field(None, description="openai: the API base, e.g. https://api.openai.com/v1")
    api_key_env: str | None = Field(None, description="openai: the environment variable holding the key")
    region: str | None = Field(None, description="bedrock: the AWS region")
    dimensions: int | None = Field(None, gt=0, description="vector size when the model lets you choose")
    batch_size: int = Field(64, gt=0)
    cache_size: int = Field(4096, ge=0, description="query vectors kept in an LRU cache")


class HnswSpec(Strict):
    m: int = Field(16, ge=2)
    ef_construction: int = Field(128, ge=2)
    ef_search: int = Field(100, ge=2)


class StoreSpec(Strict):
    kind: Literal["local", "opensearch"] = "local"
    path: str | None = Field(None, description="local: folder of the store (default .llmgw/retrieval/<name>)")
    url: str | None = Field(None, description="opensearch: the cluster URL (or ${OPENSEARCH_URL})")
    index: str | None = Field(None, description="opensearch: alias searched (default llmgw-<name>)")
    engine: Literal["faiss", "lucene"] = Field("lucene", description="opensearch k-NN engine (nmslib is deprecated)")
    hnsw: HnswSpec = HnswSpec()
    local_index: Literal["auto", "exact", "hnsw"] = Field(
        "auto", description="local: exact cosine, an HNSW graph (faiss), or auto: HNSW past 20,000 chunks"
    )
    hybrid: Literal["pipeline", "client"] = Field(
        "pipeline", description="fuse in an OpenSearch search pipeline, or on the client (older clusters)"
    )
    verify_certs: bool = True
    username_env: str | None = None
    password_env: str | None = None


class SearchSpec(Strict):
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    # min-max fusion, 0.3 towards vectors, 200 candidates per side: chosen by bench.fusion on the dev
    # qrels of COVID-QA, PubMedQA and TAT-QA together (81 configurations; the best mean nDCG@10 among
    # those at least as good as the better single side on every corpus), reported on their test qrels
    # and on HotpotQA, never chosen on (docs/retrieval.md, docs/benchmarks.md)
    fusion: Literal["rrf", "min_max"] = Field("min_max", description="min-max normalised scores, or rank fusion")
    rrf_k: int = Field(60, ge=1, description="the rank constant of reciprocal rank fusion")
    dense_weight: float = Field(0.3, ge=0, le=1, description="weight of the vector side in either fusion (BM25: 1-w)")
    candidates: int = Field(200, ge=1, description="hits taken from each side before fusion (at least k)")
    k: int = Field(4, ge=1, le=50, description="passages inserted into the prompt")
    min_score: float = Field(0.0, ge=0, description="drop fused hits scoring below this")


class CollectionSpec(Strict):
    name: str = ""
    description: str = ""
    sources: list[SourceSpec] = []
    chunking: ChunkingSpec = ChunkingSpec()
    embedding: EmbeddingSpec = EmbeddingSpec()
    store: StoreSpec = StoreSpec()
    search: SearchSpec = SearchSpec()
    tenant_field: str | None = Field(
        None, description="metadata field naming a chunk's tenant; when set, a caller sees only its team's chunks"
    )
    template: str = Field("rag/passages", description="template in prompts/ that inserts the passages")
    root: str = Field("", exclude=True, description="the folder of the collection file (set when loading)")


class CollectionError(Exception):
    pass


def load_collection(directory: str | Path, name: str) -> CollectionSpec:
    """``<directory>/<name>.yaml`` parsed and checked; source paths resolve against its folder."""
    if not NAME.match(name):
        raise CollectionError(f"invalid collection name {name!r} (lower-case letters, digits, - and _)")
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        raise CollectionError(f"no collection {name!r}: {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CollectionError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CollectionError(f"{path}: expected a mapping")
    data.setdefault("name", name)
    try:
        spec = CollectionSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}:"]
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            lines.append(f"  {where}: {error['msg']}")
        raise CollectionError("\n".join(lines)) from None
    if spec.name != name:
        raise CollectionError(f"{path}: name {spec.name!r} differs from the file name {name!r}")
    spec.root = str(path.parent.resolve())
    return spec


def list_collections(directory: str | Path) -> list[str]:
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if NAME.match(p.stem))

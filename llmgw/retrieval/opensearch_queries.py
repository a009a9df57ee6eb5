"""The OpenSearch request bodies the store sends, as plain functions (tested against the documented shapes).

* the index template: ``knn_vector`` with an explicit engine (faiss or lucene; nmslib is deprecated
  in OpenSearch 3) and HNSW parameters, a BM25 ``text`` field, keyword metadata;
* k-NN, BM25 and ``hybrid`` queries with the collection and tenant filters inside every clause;
* the search pipelines that fuse a hybrid query: ``normalization-processor`` (min-max, weighted
  arithmetic mean) or ``score-ranker-processor`` (reciprocal rank fusion, OpenSearch ≥ 2.19).
"""

from __future__ import annotations

from typing import Any

from llmgw.retrieval.collection import StoreSpec
from llmgw.retrieval.store import Filters

VECTOR_FIELD = "embedding"
TEXT_FIELD = "search_text"


def index_template(pattern: str, dimensions: int, spec: StoreSpec) -> dict[str, Any]:
    return {
        "index_patterns": [pattern],
        "template": {
            "settings": {
                "index": {"knn": True, "knn.algo_param.ef_search": spec.hnsw.ef_search, "number_of_shards": 1}
            },
            "mappings": {
                "dynamic_templates": [
                    {
                        "metadata_strings": {
                            "path_match": "metadata.*",
                            "match_mapping_type": "string",
                            "mapping": {"type": "keyword"},
                        }
                    }
                ],
                "properties": {
                    VECTOR_FIELD: {
                        "type": "knn_vector",
                        "dimension": dimensions,
                        "method": {
                            "name": "hnsw",
                            "space_type": "cosinesimil",
                            "engine": spec.engine,
                            "parameters": {"m": spec.hnsw.m, "ef_construction": spec.hnsw.ef_construction},
                        },
                    },
                    TEXT_FIELD: {"type": "text", "analyzer": "standard"},
                    "text": {"type": "text", "index": False},
                    "title": {"type": "text"},
                    "heading": {"type": "text"},
                    "collection": {"type": "keyword"},
                    "chunk_id": {"type": "keyword"},
                    "doc_id": {"type": "keyword"},
                    "doc_hash": {"type": "keyword"},
                    "doc_chunks": {"type": "integer"},
                    "ord": {"type": "integer"},
                    "metadata": {"type": "object"},
                },
            },
        },
    }


def filter_clauses(collection: str, filters: Filters) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{"term": {"collection": collection}}]
    for name, wanted in sorted(filters.items()):
        field = f"metadata.{name}"
        clauses.append({"terms": {field: wanted}} if isinstance(wanted, list) else {"term": {field: wanted}})
    return clauses


def bm25_clause(text: str, filters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"must": [{"match": {TEXT_FIELD: {"query": text}}}], "filter": filters}}


def knn_clause(vector: list[float], k: int, filters: list[dict[str, Any]]) -> dict[str, Any]:
    # efficient (pre-)filtering inside the k-NN query: supported by the lucene and faiss engines
    return {"knn": {VECTOR_FIELD: {"vector": vector, "k": k, "filter": {"bool": {"filter": filters}}}}}


def search_body(query: dict[str, Any], size: int) -> dict[str, Any]:
    return {"size": size, "query": query, "_source": {"excludes": [VECTOR_FIELD]}}


def hybrid_body(
    text: str, vector: list[float], k: int, candidates: int, filters: list[dict[str, Any]]
) -> dict[str, Any]:
    """Sub-queries in a fixed order, BM25 first: the pipeline's weights follow it."""
    query = {"hybrid": {"queries": [bm25_clause(text, filters), knn_clause(vector, candidates, filters)]}}
    return search_body(query, k)


def rrf_pipeline(rank_constant: int, dense_weight: float = 0.5) -> dict[str, Any]:
    combination: dict[str, Any] = {"technique": "rrf", "rank_constant": rank_constant}
    if dense_weight != 0.5:  # weights follow the sub-queries' order: BM25, then k-NN (OpenSearch ≥ 3.1)
        combination["parameters"] = {"weights": [round(1.0 - dense_weight, 4), round(dense_weight, 4)]}
    return {
        "description": "llmgw hybrid search: reciprocal rank fusion of BM25 and k-NN",
        "phase_results_processors": [{"score-ranker-processor": {"combination": combination}}],
    }


def min_max_pipeline(dense_weight: float) -> dict[str, Any]:
    return {
        "description": "llmgw hybrid search: min-max normalised BM25 and k-NN scores, weighted mean",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": [round(1.0 - dense_weight, 4), round(dense_weight, 4)]},
                    },
                }
            }
        ],
    }

"""Retrieval: collections of chunked documents, searched by vectors and keywords together.

``collection`` reads ``retrieval/<name>.yaml``; ``documents`` and ``chunking`` turn files into
chunks; ``embeddings`` turns text into vectors; ``local`` and ``opensearch`` are the two stores
behind one interface (``store``), fused the same way (``fusion``); ``ingest`` keeps a store in
step with its sources; ``service`` is what the gateway's retrieval stage calls.
"""

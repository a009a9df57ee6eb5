"""The response cache: an exact tier and a semantic tier that are correct by construction.

``keys`` turns a request into its scope and exact key, ``veto`` rejects semantic near-misses,
``index`` and ``store`` hold entries in process (persisted to SQLite), ``redis_store`` shares the
exact tier between replicas, ``service`` applies the policy, and ``llmgw.stages.cache`` wires it
into the pipeline. docs/cache.md explains the design.
"""

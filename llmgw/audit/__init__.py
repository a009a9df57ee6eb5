"""The guardrail log: hash-chained guard events, their verification, review and retention.

Kept import-light: ``llmgw.storage.db`` imports :mod:`llmgw.audit.models` to create the tables.
"""

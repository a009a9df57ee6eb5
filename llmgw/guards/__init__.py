"""Guardrails: PII masking, prompt-injection detection, output moderation, and the guardrail log."""

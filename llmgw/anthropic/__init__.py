"""Anthropic's Messages API on both sides of the gateway, translated to and from the one internal shape.

The pipeline runs every request as an OpenAI Chat Completions body and every answer as a
``chat.completion`` or its chunks (``llmgw.providers.base``). This package is the Messages API's
side of that contract, and never reads the request context:

* ``inbound``: a client's ``POST /v1/messages`` body → the internal chat body.
* ``render``: the internal completion or chunks → a Messages response or Anthropic's SSE events,
  and llmgw's errors in Anthropic's error shape.
* ``outbound``: the internal chat body → a Messages request for an Anthropic-compatible upstream,
  and its answer (JSON or SSE events) → the internal completion or chunks
  (``llmgw.providers.anthropic``).

Tool calls: a ``tool_use`` block is an assistant ``tool_calls`` entry whose ``arguments`` are
the JSON of its ``input``; a ``tool_result`` block is a ``role: tool`` message. So the input
guards, PII restoration in tool arguments, the cache and costs see Messages requests exactly as
they see chat requests.
"""

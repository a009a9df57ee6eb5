"""OpenAI's Responses API (``POST /v1/responses``) on top of the chat pipeline.

The pipeline runs one internal request shape, the Chat Completions body, so that templates,
guards, cache, retrieval, routing, limits and the audit log behave the same whichever API the
client spoke. This package only translates at the edges:

* :mod:`~llmgw.responses_api.request`: a Responses body → the internal chat body;
* :mod:`~llmgw.responses_api.response`: the internal completion → a Responses ``response`` object;
* :mod:`~llmgw.responses_api.stream`: internal chunks → Responses stream events;
* :mod:`~llmgw.responses_api.upstream`: the reverse, for an upstream that speaks Responses
  (``responses: native`` on an ``openai`` provider).

llmgw keeps no conversation state (no raw conversation is stored): ``previous_response_id`` and
``conversation`` are refused, ``store`` is accepted and ignored.
"""

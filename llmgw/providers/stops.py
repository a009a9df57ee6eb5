"""Which of a request's stop sequences ended the answer, where an OpenAI-compatible upstream says so.

Anthropic's Messages API reports it (``stop_reason: "stop_sequence"`` and the ``stop_sequence``);
Chat Completions does not: the stop string is cut from the text and ``finish_reason`` is
``"stop"``, exactly as at the natural end of a turn. Some OpenAI-compatible servers say it in
fields of their own, read here:

* vLLM: ``choices[i].stop_reason``, the stop string that matched (or a stop token's id, which is
  no sequence of the request);
* SGLang: ``choices[i].matched_stop``, the same;
* llama.cpp's llama-server: ``__verbose.stop_type == "word"`` with ``__verbose.stopping_word``,
  sent only when the request says ``verbose: true`` (the ``llama_server`` provider asks for it
  when there are stop sequences, and removes the ``__verbose`` it asked for);
* another llmgw: ``choices[i].stop_sequence``.

A value counts only when it is one of the request's own stop sequences. What is found rides in
the internal answer as ``choices[i].stop_sequence`` (on a stream, on the choice that carries the
``finish_reason``), which the Messages renderer reports. OpenAI, Azure OpenAI, Ollama and other
servers say nothing: there the sequence cannot be known, and none is set.
"""

from __future__ import annotations

from typing import Any

#: choice fields that name the matched stop string (llmgw's own, vLLM's, SGLang's)
FIELDS = ("stop_sequence", "stop_reason", "matched_stop")
#: llama-server's debugging object, present when the request said ``verbose: true``
DEBUG = "__verbose"


def requested(body: dict[str, Any]) -> tuple[str, ...]:
    """The request's stop sequences (chat's ``stop``: a string or a list of them)."""
    stop = body.get("stop")
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, list):
        return tuple(s for s in stop if isinstance(s, str) and s)
    return ()


class StopReader:
    """Marks ``stop_sequence`` on the choices of one answer (a completion, or a stream's chunks).

    Built only for a request with stop sequences, so other requests pay nothing per chunk.
    """

    __slots__ = ("stops", "strip_debug", "word")

    def __init__(self, stops: tuple[str, ...], strip_debug: bool = False) -> None:
        self.stops = stops
        self.strip_debug = strip_debug  # remove llama-server's ``__verbose`` (llmgw asked for it)
        self.word: str | None = None  # llama-server's stopping word, once seen

    @classmethod
    def of(cls, body: dict[str, Any], strip_debug: bool = False) -> StopReader | None:
        stops = requested(body)
        return cls(stops, strip_debug) if stops else None

    def _debug(self, payload: dict[str, Any]) -> None:
        verbose = payload.pop(DEBUG, None) if self.strip_debug else payload.get(DEBUG)
        if isinstance(verbose, dict) and verbose.get("stop_type") == "word":
            word = verbose.get("stopping_word")
            if isinstance(word, str) and word in self.stops:
                self.word = word

    def _mark(self, choice: dict[str, Any]) -> None:
        found: str | None = None
        if choice.get("finish_reason") == "stop":
            for name in FIELDS:
                value = choice.get(name)
                if isinstance(value, str) and value in self.stops:
                    found = value
                    break
            else:
                found = self.word
        if found is not None:
            choice["stop_sequence"] = found
        elif "stop_sequence" in choice:  # an upstream's value that is none of ours
            del choice["stop_sequence"]

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        self._debug(completion)
        for choice in completion.get("choices") or ():
            self._mark(choice)
        return completion

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        if DEBUG in chunk:
            self._debug(chunk)
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason") is not None:
                self._mark(choice)
        return chunk

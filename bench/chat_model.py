"""What the embedded chat models answer to everyday questions (bench/data/everyday-questions.yaml).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.chat_model [--url http://127.0.0.1:8080/v1]
        [--runs smollm2,gemma-chat,gemma-completion] [--max-tokens N] [--concurrency 4]

Without ``--url`` the gateway runs in-process with the embedded defaults (``llmgw serve`` without
``--config``: guards on, both llama-servers), on a free port and a temporary database. Each
question is sent as a newcomer would send it: one user message through the official OpenAI SDK,
``temperature=0``, and by default no ``max_tokens`` (the provider's ``default_max_tokens``
applies; ``--max-tokens`` shortens a run on a slow machine). Runs:

- ``smollm2``: ``smollm2-135m-instruct``, the default chat model, asked the plain question;
- ``gemma-chat``: ``gemma-3-270m`` asked the plain question (what the default used to answer);
- ``gemma-completion``: ``gemma-3-270m`` with the completion prompt it suits (``Question: …\nAnswer:``).

An answer counts as right when it contains one of the accepted words as a whole word. That is a
rough reading (an answer that names the right word among wrong ones passes): every answer is kept
in the results file to be read, and docs/benchmarks.md reports the reading by hand next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import yaml

BENCH = Path(__file__).resolve().parent
QUESTIONS = BENCH / "data" / "everyday-questions.yaml"
RUNS = {
    "smollm2": ("smollm2-135m-instruct", "{q}"),
    "gemma-chat": ("gemma-3-270m", "{q}"),
    "gemma-completion": ("gemma-3-270m", "Question: {q}\nAnswer:"),
}


def right(answer: str, accept: list[str]) -> bool:
    text = answer.lower()
    return any(re.search(rf"(?<![\w]){re.escape(word.lower())}(?![\w])", text) for word in accept)


def ask(client: openai.OpenAI, model: str, form: str, item: dict[str, Any], max_tokens: int | None) -> dict[str, Any]:
    started = time.perf_counter()
    extra = {"max_tokens": max_tokens} if max_tokens else {}
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": form.format(q=item["q"])}], temperature=0, **extra
    )
    text = completion.choices[0].message.content or ""
    return {
        "question": item["q"],
        "answer": text,
        "right": right(text, item["accept"]),
        "completion_tokens": completion.usage.completion_tokens if completion.usage else None,
        "finish_reason": completion.choices[0].finish_reason,
        "seconds": round(time.perf_counter() - started, 2),
    }


def ask_all(
    client: openai.OpenAI, model: str, form: str, questions: list[dict[str, Any]], max_tokens: int | None, workers: int
) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        answers = list(pool.map(lambda item: ask(client, model, form, item, max_tokens), questions))
    for a in answers:
        print(f"  [{'x' if a['right'] else ' '}] {a['question']} -> {a['answer'].strip()[:100]!r}", flush=True)
    seconds = time.perf_counter() - started
    tokens = sum(a["completion_tokens"] or 0 for a in answers)
    return {
        "model": model,
        "prompt": form,
        "max_tokens": max_tokens,
        "right": sum(a["right"] for a in answers),
        "questions": len(answers),
        "seconds": round(seconds, 1),
        "completion_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 2),
        "answers": answers,
    }


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor() or "?")
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running gateway's /v1 URL (default: start one with the embedded defaults)")
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default: bench/results/DATE-chat-model.json)"
    )
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--max-tokens", type=int, help="set max_tokens (default: unset, as the SDKs send it)")
    parser.add_argument("--concurrency", type=int, default=4, help="questions in flight (llama-server has 4 slots)")
    args = parser.parse_args()
    questions = yaml.safe_load(QUESTIONS.read_text())
    gateway = None
    if args.url:
        url = args.url
    else:
        from llmgw.config import load_config
        from tests.conftest import RunningGateway

        defaults = load_config()
        db = Path(tempfile.mkdtemp()) / "gw.db"
        storage = defaults.storage.model_copy(update={"url": f"sqlite:///{db}"})
        gateway = RunningGateway(defaults.model_copy(update={"storage": storage})).start()
        url = f"{gateway.url}/v1"
    client = openai.OpenAI(base_url=url, api_key="unused-on-loopback", max_retries=0, timeout=600)
    started = datetime.now(UTC)
    try:
        runs = []
        for name in args.runs.split(","):
            model, form = RUNS[name]
            print(f"{name}: {model}, prompt {form!r}:", flush=True)
            runs.append({"run": name, **ask_all(client, model, form, questions, args.max_tokens, args.concurrency)})
            print(f"  {runs[-1]['right']}/{runs[-1]['questions']} right in {runs[-1]['seconds']} s", flush=True)
    finally:
        if gateway is not None:
            gateway.stop()
    result = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["OMP_NUM_THREADS=1 .venv/bin/python -m bench.chat_model", *sys.argv[1:]]),
        "runs": runs,
    }
    out = args.out or BENCH / "results" / f"{started:%Y-%m-%d}-chat-model.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

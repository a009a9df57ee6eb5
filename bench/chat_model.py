"""What the embedded chat models answer to everyday questions (bench/data/everyday-questions.yaml).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.chat_model [--url http://127.0.0.1:8080/v1]

Without ``--url`` the gateway runs in-process with the embedded defaults (``llmgw serve`` without
``--config``: guards on, both llama-servers), on a free port and a temporary database. Each
question is sent as a newcomer would send it: one user message through the official OpenAI SDK,
``temperature=0``, no ``max_tokens`` (so the provider's ``default_max_tokens`` applies). Runs:

- ``smollm2-135m-instruct``: the default chat model, asked the plain question;
- ``gemma-3-270m`` asked the plain question (what the default used to answer);
- ``gemma-3-270m`` with the completion-style prompt it suits (``Question: …\\nAnswer:``).

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
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import yaml

BENCH = Path(__file__).resolve().parent
QUESTIONS = BENCH / "data" / "everyday-questions.yaml"
RUNS = (
    ("smollm2-135m-instruct", "{q}"),
    ("gemma-3-270m", "{q}"),
    ("gemma-3-270m", "Question: {q}\nAnswer:"),
)


def right(answer: str, accept: list[str]) -> bool:
    text = answer.lower()
    return any(re.search(rf"(?<![\w]){re.escape(word.lower())}(?![\w])", text) for word in accept)


def ask_all(client: openai.OpenAI, model: str, form: str, questions: list[dict[str, Any]]) -> dict[str, Any]:
    answers = []
    started = time.perf_counter()
    for item in questions:
        t0 = time.perf_counter()
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": form.format(q=item["q"])}], temperature=0
        )
        text = completion.choices[0].message.content or ""
        answers.append({
            "question": item["q"],
            "answer": text,
            "right": right(text, item["accept"]),
            "completion_tokens": completion.usage.completion_tokens if completion.usage else None,
            "finish_reason": completion.choices[0].finish_reason,
            "seconds": round(time.perf_counter() - t0, 2),
        })  # fmt: skip
        print(f"  [{'x' if answers[-1]['right'] else ' '}] {item['q']} -> {text.strip()[:100]!r}", flush=True)
    return {
        "model": model,
        "prompt": form,
        "right": sum(a["right"] for a in answers),
        "questions": len(answers),
        "seconds": round(time.perf_counter() - started, 1),
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
        for model, form in RUNS:
            print(f"{model}, prompt {form!r}:", flush=True)
            runs.append(ask_all(client, model, form, questions))
            print(f"  {runs[-1]['right']}/{runs[-1]['questions']} right in {runs[-1]['seconds']} s", flush=True)
    finally:
        if gateway is not None:
            gateway.stop()
    result = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python -m bench.chat_model"
        + (f" --url {args.url}" if args.url else ""),
        "runs": runs,
    }
    out = args.out or BENCH / "results" / f"{started:%Y-%m-%d}-chat-model.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

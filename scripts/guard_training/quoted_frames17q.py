"""Descriptive frames around attack strings, for the passage unit of experiment inj17q (issue 17).

A benign document can *quote* an attack: a security advisory describes the injection it fixed, a
changelog says which prompts were mishandled, an incident report gives the payload, a test fixture
holds it as data, an awareness page shows it as an example. The passage unit reads the MiniLM
vector of the window, in which a quoted attack and a planted one look alike; these frames give it
both sides of the same text:

* **quoted** (benign): the attack string inside the frame, in quotation marks, a code span or a
  block marked as an example;
* **addressed** (attack): the same frame with a neutral phrase in the slot, and the attack string
  planted into it (``broad.plant``) where it speaks to the reader.

Frames were typed for this experiment from general knowledge of these document kinds (no blind row,
no evaluation row, no failure case was read); the attack strings are the training data's own (BIPIA
and the short direct user attacks), each frame filled only with attacks of its own split.
"""

from __future__ import annotations

import hashlib
import random

SEED = 17

#: topics for the ``{thing}`` slot: ordinary software components
THINGS = (
    "the ticket importer", "the PDF summariser", "the support chatbot", "the mail triage assistant",
    "the search plug-in", "the meeting-notes bot", "the CRM sync job", "the code review helper",
    "the wiki answer bot", "the invoice extractor", "the calendar assistant", "the browser extension",
    "the document Q&A service", "the HR FAQ assistant", "the release-notes generator", "the chat widget",
)  # fmt: skip

#: what the slot holds in an "addressed" document (the attack is planted elsewhere, speaking to the reader)
NEUTRAL = (
    "a crafted instruction", "text written to steer the model", "an embedded command",
    "a hidden directive", "instructions hidden in the content", "a string meant for the assistant",
)  # fmt: skip

FRAMES: dict[str, list[str]] = {
    "advisory": [
        "Security advisory SA-{n}: indirect prompt injection in {thing}\n\nSeverity: medium. Affected versions: "
        "2.3.0 to 2.4.1. Content fetched from third parties was placed in the model's context without marking. "
        'An attacker could store text such as "{attack}" in a record, and {thing} would treat it as an '
        "instruction. Fixed in 2.4.2: retrieved content is now wrapped and labelled as data. Credit: internal "
        "red team.",
        "Advisory {n} - {thing}\nSummary: untrusted input could change the assistant's behaviour.\nDetails: the "
        "reporter showed that a document containing the sentence `{attack}` was followed as if the operator had "
        "written it. Impact is limited to the requesting user's session. Mitigation: upgrade, or disable "
        "automatic summarisation of external files until you can.",
        "CVE request draft for {thing}. Class: CWE-77 style injection through retrieved text. Proof of concept "
        '(do not run against production): a web page with the hidden paragraph "{attack}". Expected: the '
        "paragraph is summarised. Observed: the assistant acted on it. Patch status: merged, release pending.",
        "Vulnerability note #{n}. Component: {thing}. The input sanitiser stripped HTML but kept visible text, "
        "so an instruction like '{attack}' reached the model unchanged. We added a classifier on retrieved "
        "passages and an allow-list for tool calls. Customers on the hosted plan need not take action.",
    ],
    "changelog": [
        "## {v} ({date})\n### Fixed\n- {thing}: prompts like '{attack}' embedded in uploaded files were passed "
        "to the model as instructions; they are now quoted as data (#{n}).\n- Dark mode contrast in the "
        "settings page.\n### Changed\n- Bumped the tokenizer to 0.19.",
        "Release notes {v}\n* Security: hardened {thing} against injected text. Example that used to work: "
        '"{attack}". It is now flagged and shown to the reviewer.\n* Performance: 20 % faster cold start.\n'
        "* Docs: new page on retrieval guards.",
        "commit {h}\nAuthor: dev <dev@example.org>\n\n"
        "    guard: treat quoted instructions in retrieved text as data\n\n"
        "    Regression test for #{n}: a passage containing `{attack}` must not change the\n"
        "    assistant's reply. Also renames the fixture folder.",
        'v{v} - {date}\nFIXED: {thing} followed instructions found in e-mail bodies (for instance "{attack}"). '
        "Retrieved mail is now scored before it reaches the model.\nADDED: export to CSV.\nREMOVED: the legacy "
        "v1 endpoint (deprecated since 3.0).",
    ],
    "incident": [
        "Incident report IR-{n} ({date})\nSummary: {thing} sent an unexpected reply to a customer.\nRoot cause: "
        'a support ticket contained the text "{attack}", which the assistant read as an instruction.\n'
        "Detection: a reviewer noticed the odd reply after 40 minutes.\nActions: ticket bodies are now scored by "
        "the injection guard; follow-up review scheduled.",
        "Post-mortem: prompt injection through a shared document\n\nWhat happened: a shared document held the "
        "line '{attack}'. When a colleague asked {thing} to summarise it, the summary followed that line instead. "
        "No data left the company. What we changed: retrieved text is labelled as untrusted, and tool calls need "
        "confirmation.",
        "SOC ticket {n}, status closed. Analyst note: user reported that {thing} behaved strangely. Evidence: the "
        'retrieved page included "{attack}" in white text. Classification: attempted indirect injection, no '
        "impact. Blocklisted the domain and added the sample to the test corpus.",
    ],
    "fixture": [
        "def test_injected_passage_is_not_followed(client):\n    # the payload below is test data, taken from the "
        'incident in #{n}\n    payload = "{attack}"\n    reply = client.ask("Summarise this page", context=[payload])\n'
        '    assert "summary" in reply.lower()\n    assert not reply.tool_calls',
        "# fixtures/injection_samples.yaml - known attack strings for {thing}'s guard tests\n- id: sample-{n}\n"
        '  text: "{attack}"\n  expected: flagged\n  note: collected from a public red-team report; never sent to a '
        "live model",
        "// Known bad input for the sanitizer unit tests. Do not remove: it caught a regression in {v}.\n"
        "const INJECTED = `{attack}`;\nexpect(sanitize(INJECTED).trusted).toBe(false);\nexpect(render(INJECTED)).not"
        ".toContain('<script');",
    ],
    "explainer": [
        "What is indirect prompt injection?\n\nWhen an assistant reads web pages, e-mails or files, the text it reads "
        'can contain instructions written by someone else. A typical example looks like "{attack}". The model '
        "cannot always tell such text from its operator's request. Defences: keep retrieved text marked as data, "
        "limit tools, and ask the user before acting.",
        "Security awareness, module 4: AI assistants\nAttackers hide sentences in documents hoping an assistant will "
        'obey them. Here is one seen in the wild: "{attack}". If an assistant suddenly asks for a password, opens a '
        "link or changes its tone after reading a file, stop and report it to the security team.",
        "Red-team scope for {thing}, week {n}\nIn scope: indirect injection through uploaded files and fetched pages. "
        'Seed strings for testing include "{attack}" and its translations. Out of scope: denial of service, '
        "social engineering of staff. Findings go to the shared tracker within 24 hours.",
    ],
    "forum": [
        'Re: weird behaviour after summarising a PDF\n\nI think the PDF had hidden text. Someone put "{attack}" '
        "in a tiny font on page 3, and the assistant read it as part of the request. Try copying the text out "
        "first, or use a guard that scores retrieved passages. That fixed it for us.",
        "Q: Our RAG bot answered with nonsense after indexing a customer's site. The page source had this in a "
        "hidden div: '{attack}'. How do we stop that?\nA: Treat everything retrieved as untrusted data. Strip "
        "hidden elements at ingest, and score each chunk with an injection classifier before it is used.",
    ],
}


def _fill(frame: str, attack: str, rng: random.Random, n: int) -> str:
    return (
        frame.replace("{attack}", attack.replace("\n", " ").strip())
        .replace("{thing}", rng.choice(THINGS))
        .replace("{n}", str(100 + n % 900))
        .replace("{v}", f"{rng.randint(1, 6)}.{rng.randint(0, 19)}.{rng.randint(0, 9)}")
        .replace("{date}", f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        .replace("{h}", hashlib.sha1(f"{n}:{attack}".encode()).hexdigest()[:12])
    )


def compose(attack: str, quoted: bool) -> tuple[str, str]:
    """``(kind, text)``: a frame chosen by a seeded hash of the attack, holding it quoted (benign) or
    with a neutral phrase in the slot (the caller plants the attack into it to make the positive)."""
    rng = random.Random(f"{SEED}:frame:{quoted}:{attack}")
    kind = rng.choice(sorted(FRAMES))
    frame = rng.choice(FRAMES[kind])
    n = int(hashlib.sha1(attack.encode()).hexdigest()[:6], 16)
    short = attack if len(attack) <= 300 else attack[:300].rsplit(" ", 1)[0] + " ..."
    return kind, _fill(frame, short if quoted else rng.choice(NEUTRAL), rng, n)

"""Guard policies: YAML files in ``guardrails/``, versioned in git, chosen per key, team and route.

A policy's version is the SHA-256 of its file (first 12 hex digits), logged with every decision,
so a reviewer can tell exactly which rules applied.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmgw.config import ConfigError

PiiAction = Literal["mask", "redact", "block", "allow"]
GuardAction = Literal["block", "flag", "strip"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntityRule(Strict):
    action: PiiAction = "mask"
    threshold: float = Field(0.35, ge=0, le=1)


class PatternSpec(Strict):
    regex: str
    score: float = Field(0.8, ge=0, le=1)
    name: str = "pattern"


class RecognizerSpec(Strict):
    """A custom recognizer: regex patterns and/or a deny list, with optional context words."""

    entity: str
    patterns: list[PatternSpec] = []
    deny_list: list[str] = []
    context: list[str] = []


class PiiPolicy(Strict):
    enabled: bool = True
    default: EntityRule = EntityRule(action="allow")
    entities: dict[str, EntityRule] = {}
    recognizers: list[RecognizerSpec] = []
    language: str = "en"
    #: the OpenAI ``user`` field: a salted hash, scanned like content, or kept (llmgw.stages.client_user)
    user: Literal["hash", "scan", "allow"] = "hash"
    #: the precision person names should reach: the PERSON threshold becomes the name score at which
    #: that precision was measured on the calibration split (``llmgw.guards.person_score``); None:
    #: ``entities.PERSON.threshold`` applies as written
    person_precision: float | None = Field(None, ge=0.4, le=0.95)

    def rule(self, entity: str) -> EntityRule:
        return self.entities.get(entity, self.default)

    def watched(self) -> list[str] | None:
        """Entity types that are not simply allowed (the analyzer only looks for these); None: all."""
        if self.default.action != "allow":
            return None
        kinds = {name for name, rule in self.entities.items() if rule.action != "allow"}
        kinds.update(r.entity for r in self.recognizers if self.rule(r.entity).action != "allow")
        return sorted(kinds)


class Combination(Strict):
    """Which guard providers a check consults and how their verdicts join the built-in detector's."""

    #: names from the policy's ``providers``
    providers: list[str] = Field(min_length=1)
    #: ``any`` provider (or the built-in detector) flagging is enough; ``all`` must; ``weighted``:
    #: the weighted mean of the scores reaches ``threshold``
    combine: Literal["any", "all", "weighted"] = "any"
    #: whether the built-in detector takes part (it still runs: its scores are logged)
    builtin: bool = True
    #: weights for ``weighted`` by provider name, ``builtin`` for the built-in detector; default 1
    weights: dict[str, Annotated[float, Field(ge=0)]] = {}
    threshold: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _weights_name_participants(self) -> Combination:
        """A weight for a name that does not vote (a typo: ``openai_mod`` for ``openai-mod``) would
        silently leave that provider at weight 1, and weights that are all 0 make a check that never
        fires: both are rejected when the policy loads."""
        if len(set(self.providers)) != len(self.providers):
            raise ValueError(f"a provider is named twice in {self.providers}")
        voters = [*self.providers, *(["builtin"] if self.builtin else [])]
        unknown = sorted(set(self.weights) - set(voters))
        if unknown:
            raise ValueError(f"weights for {unknown}, which do not vote in this check (voters: {voters})")
        if self.combine == "weighted" and not any(self.weights.get(name, 1.0) > 0 for name in voters):
            raise ValueError("every participant's weight is 0: the weighted check could never flag")
        return self


class ModerationEndpoint(Strict):
    """Any OpenAI-compatible ``POST /v1/moderations`` (OpenAI, or a self-hosted one)."""

    kind: Literal["openai_moderation"]
    url: str = Field(description="base URL up to /v1, e.g. https://api.openai.com/v1")
    model: str | None = None
    #: environment variable holding the API key (keys never go into policy files)
    api_key_env: str | None = None
    #: None: the endpoint's own ``flagged``; a number: flagged when a watched category's score reaches it
    threshold: float | None = Field(None, ge=0, le=1)
    #: categories that count (others are logged but ignored); empty: all
    categories: list[str] = []
    timeout_s: float | None = Field(None, gt=0)
    on_error: Literal["closed", "open"] | None = None
    #: how long a verdict on a text is reused (a conversation's history is resent every turn); 0: never
    verdict_ttl_s: float = Field(300.0, ge=0)


class LlmJudge(Strict):
    """A catalog model as a judge (Llama Guard behind vLLM/Ollama, or any model with a JSON verdict)."""

    kind: Literal["llm_judge"]
    model: str = Field(description="a model of the gateway's catalog (`models`)")
    prompt: str = Field("guards/llama-guard", description="template id in prompts/; gets `content` and `source`")
    #: how the reply is read: ``llama_guard`` (safe / unsafe + S-codes), ``json``, or ``auto``
    format: Literal["auto", "llama_guard", "json"] = "auto"
    #: flagged categories that count (Llama Guard codes such as S1, or JSON category names); empty: all
    categories: list[str] = []
    max_tokens: int = Field(64, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    on_error: Literal["closed", "open"] | None = None
    #: how long a verdict on a text is reused (a conversation's history is resent every turn); 0: never
    verdict_ttl_s: float = Field(300.0, ge=0)

    @model_validator(mode="after")
    def _llama_guard_codes(self) -> LlmJudge:
        """Llama Guard answers S-codes: a watched ``s1`` or ``violent crimes`` would never match one."""
        if self.format == "llama_guard":
            wrong = [c for c in self.categories if re.fullmatch(r"S\d{1,2}", c) is None]
            if wrong:
                raise ValueError(f"categories {wrong} are not Llama Guard codes (S1 ... S14)")
        return self


class BedrockGuardrail(Strict):
    """Amazon Bedrock Guardrails (``ApplyGuardrail``); credentials from the AWS chain (env, profile, role)."""

    kind: Literal["bedrock_guardrail"]
    guardrail_id: str
    guardrail_version: str = Field(description="a version number, or DRAFT")
    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None
    #: what counts: content filter types (PROMPT_ATTACK, HATE...), denied topic names, WORDS, PII types; empty: any
    categories: list[str] = []
    max_concurrency: int = Field(8, gt=0, description="threads for the blocking boto3 calls")
    timeout_s: float | None = Field(None, gt=0)
    on_error: Literal["closed", "open"] | None = None
    #: how long a verdict on a text is reused (a conversation's history is resent every turn); 0: never
    verdict_ttl_s: float = Field(300.0, ge=0)


class OnnxClassifier(Strict):
    """A local ONNX sequence classifier with its tokenizer.json (e.g. Llama Prompt Guard 2 exported)."""

    kind: Literal["onnx_classifier"]
    path: str = Field(description="folder holding the model and its tokenizer.json (relative: to the policy's folder)")
    model_file: str = "model.onnx"
    tokenizer_file: str = "tokenizer.json"
    #: the model's outputs in order, e.g. [BENIGN, MALICIOUS]
    labels: list[str] = Field(min_length=1)
    #: the labels that mean "flag"
    positive: list[str] = Field(min_length=1)
    threshold: float = Field(0.5, ge=0, le=1)
    #: per source (``user``, ``retrieved``, ``tool``), overriding ``threshold``: one model file read at
    #: each source's own operating point (measured on a calibration split, as the built-in detector's)
    source_thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}
    #: text put before a source's texts, for a model trained with source tags (e.g. ``{user: "user: "}``)
    prefixes: dict[str, str] = {}
    activation: Literal["softmax", "sigmoid"] = "softmax"
    max_length: int = Field(512, ge=8, description="tokens per text; longer texts are truncated")
    threads: int = Field(1, ge=1, description="ONNX Runtime threads for this model")
    timeout_s: float | None = Field(None, gt=0)
    on_error: Literal["closed", "open"] | None = None
    #: how long a verdict on a text is reused (a conversation's history is resent every turn); 0: never
    verdict_ttl_s: float = Field(300.0, ge=0)

    @model_validator(mode="after")
    def _positive_are_labels(self) -> OnnxClassifier:
        unknown = sorted(set(self.positive) - set(self.labels))
        if unknown:
            raise ValueError(f"positive label(s) {unknown} are not in labels")
        return self


ProviderSpec = Annotated[ModerationEndpoint | LlmJudge | BedrockGuardrail | OnnxClassifier, Field(discriminator="kind")]


InjectionSource = Literal["user", "retrieved", "tool"]


class InjectionPolicy(Strict):
    """What the injection guard does per source, from the detector's *calibrated* operating points.

    The model file carries, per route (user turns; retrieved passages and tool output), the
    threshold at which at most a share r of every benign calibration source is reached, for r in
    0.1 % ... 10 % (``scripts/train_guards.py`` measures them; nothing is hand-picked). A source's
    ``action`` applies at the point of ``max_benign_action_rate``; scores between the point of
    ``max_benign_flag_rate`` and that are flagged only (served, logged in the guardrail log, named in
    ``x-llmgw-guards``). A fixed ``threshold`` / ``source_thresholds`` replaces both points (the
    pre-2026-12-03 behaviour: one threshold, one action).
    """

    enabled: bool = True
    #: a fixed threshold for every source, instead of the calibrated operating points
    threshold: float | None = Field(None, ge=0, le=1)
    action: GuardAction = "block"
    #: which inputs are scanned: the user's turns, retrieved passages, tool outputs
    sources: list[InjectionSource] = ["user", "retrieved", "tool"]
    #: fixed thresholds per source, overriding ``threshold`` and the operating points
    source_thresholds: dict[InjectionSource, float] = {}
    #: the largest share of ordinary benign text of a source that ``action`` may hit (measured on the
    #: worst benign calibration source): a refused user costs more than a dropped passage
    max_benign_action_rate: dict[InjectionSource, Annotated[float, Field(ge=0, le=1)]] = {
        "user": 0.005,
        "tool": 0.005,
        "retrieved": 0.02,
    }
    #: the same for flagging (advisory); 0 flags nothing beyond ``action``
    max_benign_flag_rate: dict[InjectionSource, Annotated[float, Field(ge=0, le=1)]] = {
        "user": 0.1,
        "tool": 0.1,
        "retrieved": 0.05,
    }
    #: actions per source, overriding ``action``: what a hit in a user turn, a retrieved passage or
    #: a tool result (a ``tool`` message) does. ``block`` refuses the request for a user turn or a
    #: tool result and drops a passage; ``strip`` replaces the text; ``flag`` only logs it
    source_actions: dict[InjectionSource, GuardAction] = {}

    #: guard providers consulted per source (``llmgw.guards.providers``)
    providers: dict[InjectionSource, Combination] = {}

    def cutoffs(self, source: str, points: dict[str, float] | None = None) -> tuple[float, float]:
        """``(flag, act)`` thresholds for ``source``: a fixed threshold if the policy sets one, else
        the detector's operating points (``points``, rate -> threshold) for the policy's rates."""
        # the keys are the Literal sources; ``source`` is a plain str (another one: the general threshold)
        fixed = self.source_thresholds.get(source, self.threshold)  # type: ignore[call-overload]
        if fixed is not None:
            return fixed, fixed
        act = operating_point(points or {}, self.max_benign_action_rate.get(source, 0.005))  # type: ignore[call-overload]
        flag_rate = self.max_benign_flag_rate.get(source, 0.0)  # type: ignore[call-overload]
        flag = operating_point(points or {}, flag_rate) if flag_rate > 0 else act
        return min(flag, act), act

    def action_for(self, source: str) -> GuardAction:
        return self.source_actions.get(source, self.action)  # type: ignore[call-overload]

    def scans(self, source: str) -> bool:
        """Whether text from ``source`` is scored at all."""
        return self.enabled and source in self.sources


#: the threshold of a detector without operating points (a model built in memory, an old file)
UNCALIBRATED = 0.5


def operating_point(points: dict[str, float], rate: float) -> float:
    """The threshold of the largest calibrated rate not above ``rate`` (the strictest point when
    ``rate`` is below all of them)."""
    if not points:
        return UNCALIBRATED
    table = sorted((float(r), t) for r, t in points.items())
    chosen = [t for r, t in table if r <= rate + 1e-12]
    return chosen[-1] if chosen else table[0][1]


class ModerationPolicy(Strict):
    enabled: bool = True
    threshold: float = Field(0.5, ge=0, le=1)
    categories: dict[str, float] = Field({}, description="per-category thresholds overriding `threshold`")
    hold_back_tokens: int = Field(
        16, ge=1, description="most words read from the upstream past the last passed window before the stream waits"
    )
    window_words: int = Field(8, ge=1, description="words per moderated window")
    context_words: int = Field(4, ge=0, description="words before a window checked with it (threats across windows)")
    output_pii: Literal["allow", "flag", "block"] = "flag"
    secrets: Literal["allow", "flag", "block"] = "block"
    prose_secrets: Literal["allow", "flag", "block"] = Field(
        "block",
        description="secrets judged by their shape rather than a vendor's format: a credential written in prose "
        "or loose notes (`the DB password is Tr0ub4dor&3`, `pwd: hunter22x`, an unquoted `DB_PASS=...`) and the "
        "password of a URL (`postgresql://app:S3cret@db/prod`); for them the weaker of this and `secrets` applies",
    )
    canary: bool = True
    lexicon: list[str] = []
    #: guard providers consulted on every window the built-in moderator reads
    providers: Combination | None = None
    # -- context (issue 17): a window's classifier hit is confirmed on its sentence and neighbours
    benign_fpr: float | None = Field(
        None, gt=0, lt=1,
        description="operating point as the share of benign texts flagged on the model's calibration split "
        "(the model's table gives the threshold); replaces `threshold` when set",
    )  # fmt: skip
    confirm: bool = Field(
        True, description="a harm category hit on a window stops the answer only if its context view is flagged too"
    )
    confirm_before_words: int = Field(40, ge=0, description="most words before a window its context view reads")
    confirm_after_words: int = Field(24, ge=0, description="most words after a window its context view waits for")
    confirm_sentences: tuple[int, int] = Field(
        (0, 0), description="whole sentences before and after a window's own that its context view reads"
    )


class Policy(Strict):
    name: str = "default"
    version: str = ""
    on_error: Literal["closed", "open"] = "closed"
    timeout_s: float = Field(2.0, gt=0)
    #: added to ``timeout_s`` per 1,000 characters a check reads: reading a pasted document takes
    #: time in proportion to it (~0.05 s per 1,000 characters on a loaded 2-core VM), and a flat
    #: budget refused every document past ~50,000 characters while a hung guard is still cut
    timeout_per_1k_chars_s: float = Field(0.15, ge=0)
    #: the most characters the input guards read for one request (every scanned field together);
    #: a longer request fails like a guard (413 ``too_long_to_screen`` when failing closed)
    max_chars: int = Field(200_000, gt=0, le=1_000_000)

    def budget_s(self, chars: int) -> float:
        """How long a check that reads ``chars`` characters may take."""
        return self.timeout_s + self.timeout_per_1k_chars_s * chars / 1000

    pii: PiiPolicy = PiiPolicy()
    injection: InjectionPolicy = InjectionPolicy()
    moderation: ModerationPolicy = ModerationPolicy()
    #: guard providers by name, used by ``injection.providers`` and ``moderation.providers``
    providers: dict[str, ProviderSpec] = {}

    @model_validator(mode="after")
    def _known_providers(self) -> Policy:
        if "builtin" in self.providers:  # the name of the built-in detector's vote and weight
            raise ValueError("`builtin` is reserved for the built-in detector; name the provider otherwise")
        rules = [
            *self.injection.providers.values(),
            *([self.moderation.providers] if self.moderation.providers else []),
        ]
        for rule in rules:
            missing = sorted(set(rule.providers) - set(self.providers))
            if missing:
                raise ValueError(f"unknown guard provider(s) {missing}; define them under `providers`")
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def load_policy(path: Path) -> Policy:
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data) or {}
        raw.setdefault("name", path.stem)
        _local_paths(raw, path.parent)
        raw["version"] = hashlib.sha256(data).hexdigest()[:12]
        return Policy.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError([(str(path), f"invalid YAML: {exc}")], str(path)) from None
    except ValidationError as exc:
        problems = [(f"{path.name}:" + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(problems, str(path)) from None


def _local_paths(raw: object, folder: Path) -> None:
    """A local model's relative ``path`` (an ``onnx_classifier``'s) is read from the policy's own
    folder, so a policy and the model shipped beside it work from any working directory."""
    providers = raw.get("providers") if isinstance(raw, dict) else None
    for spec in providers.values() if isinstance(providers, dict) else ():
        if isinstance(spec, dict) and spec.get("kind") == "onnx_classifier" and isinstance(spec.get("path"), str):
            local = Path(spec["path"]).expanduser()
            if not local.is_absolute():
                spec["path"] = str(folder / local)


def load_policies(directory: Path) -> dict[str, Policy]:
    """Every ``*.yaml`` in ``directory``, by file stem."""
    if not directory.is_dir():
        return {}
    return {p.stem: load_policy(p) for p in sorted(directory.glob("*.yaml"))}

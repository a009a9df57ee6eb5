"""Configuration: defaults, examples, error messages, ``llmgw config check`` and docs completeness.

Fast: no server, no network, no provider is started.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from llmgw.cli import main
from llmgw.config import (
    DEFAULT_CONFIG,
    PROVIDER_TYPES,
    BedrockProviderConfig,
    Config,
    ConfigError,
    LlamaServerProviderConfig,
    LocalEmbeddingsProviderConfig,
    OpenAIProviderConfig,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CONFIG_DOC = ROOT / "docs" / "config.md"

#: What the example files need from the environment (fake values: nothing is contacted).
EXAMPLE_ENV = {
    "LLMGW_ADMIN_KEY": "sk-admin-example-0123456789",
    "OPENAI_API_KEY": "sk-openai-example",
    "AZURE_OPENAI_ENDPOINT": "https://example-resource.openai.azure.com",
    "AZURE_OPENAI_API_KEY": "azure-example-key",
    "ANTHROPIC_API_KEY": "sk-ant-example",
}
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))

PROVIDER = {"type": "openai", "base_url": "https://api.example.com/v1"}
MODEL = {"provider": "up", "upstream_id": "m-1"}


def problems_of(data: Any, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={} if env is None else env)
    return info.value.problems


def only_problem(data: Any, env: dict[str, str] | None = None) -> tuple[str, str]:
    problems = problems_of(data, env)
    assert len(problems) == 1, problems
    return problems[0]


def run_cli(argv: list[str]) -> int:
    """``llmgw.cli.main``'s exit status, whether it returns it or raises ``SystemExit``."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


# --- valid configs -----------------------------------------------------------------------------


def test_embedded_defaults_load() -> None:
    config = parse_config(yaml.safe_load(DEFAULT_CONFIG.read_text()), str(DEFAULT_CONFIG), env={})
    assert isinstance(config.providers["local"], LlamaServerProviderConfig)
    assert isinstance(config.providers["local-embeddings"], LocalEmbeddingsProviderConfig)
    assert config.models["gemma-3-270m"].kind == "chat"
    assert config.models["all-minilm-l6-v2"].kind == "embedding"
    # the default chat model is instruction-tuned; Gemma (a base model) is served too, by its own llama-server
    assert config.routes["default"].default_model == "smollm2-135m-instruct"
    assert config.providers[config.models["smollm2-135m-instruct"].provider].model == "smollm2-135m-instruct"
    assert config.providers[config.models["gemma-3-270m"].provider].model == "gemma-3-270m"
    assert config.auth.allow_anonymous is True
    assert config.auth.admin_key == "", "${LLMGW_ADMIN_KEY:-} gives no admin key when unset"
    assert config.storage.url == "sqlite:///var/llmgw.db"


def test_empty_config_is_all_defaults() -> None:
    for data in (None, {}):
        config = parse_config(data, env={})
        assert config == Config()
        assert list(config.routes) == ["default"] and config.routes["default"].models == ["*"]
        assert config.server.unknown_fields == "pass" and config.auth.allow_anonymous is False


def test_load_config_chooses_path_then_env_then_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    chosen = tmp_path / "chosen.yaml"
    chosen.write_text("server: {port: 9001}\n")
    monkeypatch.delenv("LLMGW_CONFIG", raising=False)
    assert load_config().providers.keys() == {"local", "local-gemma", "local-embeddings"}
    monkeypatch.setenv("LLMGW_CONFIG", str(EXAMPLES / "openai-minimal.yaml"))
    assert load_config().providers.keys() == {"openai"}
    assert load_config(chosen).server.port == 9001, "an explicit path beats LLMGW_CONFIG"


def test_example_files_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"openai-minimal.yaml", "bedrock.yaml", "azure.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_parses(path: Path) -> None:
    config = parse_config(yaml.safe_load(path.read_text()), str(path), env=EXAMPLE_ENV)
    assert config.providers and config.models
    assert config.auth.admin_key == EXAMPLE_ENV["LLMGW_ADMIN_KEY"]
    assert config.auth.allow_anonymous is False
    default = config.routes["default"].default_model
    assert default in config.models and config.models[default].kind == "chat"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_passes_config_check(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    assert run_cli(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: ok" in out and err == ""


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_secrets_come_from_the_environment(path: Path) -> None:
    problems = problems_of(yaml.safe_load(path.read_text()), env={})
    assert ("auth.admin_key", "environment variable LLMGW_ADMIN_KEY is not set") in problems


def test_openai_minimal_example() -> None:
    path = EXAMPLES / "openai-minimal.yaml"
    config = parse_config(yaml.safe_load(path.read_text()), env=EXAMPLE_ENV)
    [(name, provider)] = config.providers.items()
    assert isinstance(provider, OpenAIProviderConfig) and not provider.azure
    assert provider.api_key == EXAMPLE_ENV["OPENAI_API_KEY"] and provider.base_url.startswith("https://")
    [model] = config.models.values()
    assert model.provider == name
    assert model.price.input_per_mtok > 0 and model.price.output_per_mtok > 0


def test_azure_and_bedrock_examples() -> None:
    azure = parse_config(yaml.safe_load((EXAMPLES / "azure.yaml").read_text()), env=EXAMPLE_ENV)
    [provider] = azure.providers.values()
    assert isinstance(provider, OpenAIProviderConfig)
    assert provider.azure and provider.api_version and provider.base_url == EXAMPLE_ENV["AZURE_OPENAI_ENDPOINT"]
    bedrock = parse_config(yaml.safe_load((EXAMPLES / "bedrock.yaml").read_text()), env=EXAMPLE_ENV)
    [provider] = bedrock.providers.values()
    assert isinstance(provider, BedrockProviderConfig) and provider.region == "us-east-1"
    with_region = parse_config(
        yaml.safe_load((EXAMPLES / "bedrock.yaml").read_text()),
        env={**EXAMPLE_ENV, "AWS_REGION": "eu-west-1"},
    )
    assert with_region.providers["bedrock"].region == "eu-west-1"  # type: ignore[union-attr]


# --- errors name the key and say why ------------------------------------------------------------


def test_unknown_key() -> None:
    assert only_problem({"server": {"hostname": "0.0.0.0"}}) == (
        "server.hostname",
        "unknown key (see docs/config.md)",
    )
    assert only_problem({"serverr": {}}) == ("serverr", "unknown key (see docs/config.md)")
    path, why = only_problem({"providers": {"up": {**PROVIDER, "apikey": "x"}}})
    assert (path, why) == ("providers.up.apikey", "unknown key (see docs/config.md)")
    path, _ = only_problem({"routes": {"default": {"stages": {"guards": False}}}})
    assert path == "routes.default.stages.guards"


def test_every_provider_type_is_one_registration() -> None:
    """The registered table is what the config accepts, how errors are named and what is built:
    each ``type`` parses into its class, a bad key in it is named without the ``type`` tag pydantic
    adds, and its implementation is a provider class (imported by name, only when configured)."""
    import importlib

    from llmgw.providers import ProviderBase

    assert set(PROVIDER_TYPES) == {"openai", "bedrock", "llama_server", "sentence_transformers", "anthropic"}
    for tag, registered in PROVIDER_TYPES.items():
        required = {"base_url": "http://127.0.0.1:1"} if tag == "openai" else {}
        config = parse_config({"providers": {"p": {"type": tag, **required}}}, env={})
        assert type(config.providers["p"]) is registered.config
        assert only_problem({"providers": {"p": {"type": tag, **required, "bogus": 1}}}) == (
            "providers.p.bogus",
            "unknown key (see docs/config.md)",
        )
        module, _, name = registered.implementation.partition(":")
        assert issubclass(getattr(importlib.import_module(module), name), ProviderBase), tag


def test_wrong_type() -> None:
    path, why = only_problem({"server": {"port": "eighty"}})
    assert path == "server.port" and "valid integer" in why
    path, why = only_problem({"server": {"port": 70000}})
    assert path == "server.port" and "65535" in why
    path, why = only_problem({"server": {"unknown_fields": "drop"}})
    assert path == "server.unknown_fields" and "'pass' or 'reject'" in why
    path, why = only_problem({"providers": {"up": PROVIDER}, "models": {"m": {**MODEL, "capabilities": "chat"}}})
    assert path == "models.m.capabilities" and "list" in why
    path, why = only_problem({"keys": [{"name": "k", "sha256": "not-hex"}]})
    assert path == "keys[0].sha256" and "pattern" in why
    assert only_problem(["not", "a", "mapping"]) == ("", "the top level must be a mapping")


def test_missing_required_field() -> None:
    assert only_problem({"providers": {"x": {"type": "openai"}}}) == (
        "providers.x.base_url",
        "Field required",
    )
    assert only_problem({"providers": {"up": PROVIDER}, "models": {"m": {"provider": "up"}}}) == (
        "models.m.upstream_id",
        "Field required",
    )


def test_provider_type_is_checked() -> None:
    path, why = only_problem({"providers": {"x": {"type": "opneai", "base_url": "u"}}})
    assert path == "providers.x" and "opneai" in why and "sentence_transformers" in why
    path, why = only_problem({"providers": {"x": {"base_url": "u"}}})
    assert path == "providers.x" and "'type'" in why
    # keys of one provider type are unknown on another
    path, why = only_problem({"providers": {"x": {"type": "bedrock", "base_url": "u"}}})
    assert (path, why) == ("providers.x.base_url", "unknown key (see docs/config.md)")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_base_url_holding_credentials_is_refused_without_repeating_them(kind: str) -> None:
    """Before: loaded, and beside ``api_key`` every request was a 500 (aiohttp refuses both); alone,
    the password sat in a URL the gateway names in logs, errors and traces."""
    url = "https://alice:s3cret-pw@upstream.example/v1"
    path, why = only_problem({"providers": {"x": {"type": kind, "base_url": url, "api_key": "k"}}})
    assert path == "providers.x.base_url" and "must not hold credentials" in why
    assert "s3cret-pw" not in why and "alice" not in why
    path, why = only_problem({"providers": {"x": {"type": kind, "base_url": "https://alice@upstream.example"}}})
    assert path == "providers.x.base_url"
    # a user name is no credential of a port or a path: these load
    parse_config({"providers": {"x": {"type": kind, "base_url": "http://127.0.0.1:8000/v1/@models"}}})


def test_model_referring_to_unknown_provider() -> None:
    data = {"providers": {"up": PROVIDER}, "models": {"m": {**MODEL, "provider": "upp"}}}
    assert only_problem(data) == ("models.m.provider", "unknown provider 'upp' (known: up)")
    assert only_problem({"models": {"m": MODEL}}) == (
        "models.m.provider",
        "unknown provider 'up' (known: none)",
    )


def test_route_naming_unknown_model() -> None:
    base = {"providers": {"up": PROVIDER}, "models": {"m": MODEL}}
    data = {**base, "routes": {"default": {"models": ["m", "gpt-5"]}}}
    assert only_problem(data) == ("routes.default.models[1]", "unknown model 'gpt-5'")
    data = {**base, "routes": {"default": {"default_model": "gpt-5"}}}
    assert only_problem(data) == ("routes.default.default_model", "unknown model 'gpt-5'")
    assert parse_config({**base, "routes": {"default": {"models": ["*"]}}}, env={})


def test_default_route_is_required() -> None:
    assert only_problem({"routes": {"main": {}}}) == ("routes", "a route named 'default' is required")


def test_every_problem_is_reported() -> None:
    problems = problems_of({"server": {"port": "x", "hostname": "h"}, "providers": {"a": {"type": "openai"}}})
    assert [p for p, _ in problems] == ["server.port", "server.hostname", "providers.a.base_url"]


def test_error_message_lists_problems_with_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"server": {"port": "x"}}, "my.yaml", env={})
    assert str(info.value).startswith("my.yaml: 1 problem(s)\n  server.port: ")


# --- environment interpolation ------------------------------------------------------------------


def test_env_var_substituted() -> None:
    data = {"auth": {"admin_key": "${ADMIN}"}, "server": {"port": "${PORT}"}}
    config = parse_config(data, env={"ADMIN": "secret", "PORT": "9000"})
    assert config.auth.admin_key == "secret"
    assert config.server.port == 9000, "substituted strings are converted to the field's type"


def test_missing_env_var_names_key_and_variable() -> None:
    data = {"providers": {"up": {**PROVIDER, "api_key": "${OPENAI_API_KEY}"}}}
    assert only_problem(data) == ("providers.up.api_key", "environment variable OPENAI_API_KEY is not set")
    listed = {"keys": [{"name": "k", "sha256": "${KEY_HASH}"}]}
    assert only_problem(listed) == ("keys[0].sha256", "environment variable KEY_HASH is not set")


def test_env_var_default() -> None:
    data = {
        "server": {"port": "${PORT:-8181}", "host": "${HOST:-}"},
        "storage": {"url": "${DB:-sqlite:///x.db}"},
    }
    config = parse_config(data, env={})
    assert (config.server.port, config.server.host, config.storage.url) == (8181, "", "sqlite:///x.db")
    config = parse_config(data, env={"PORT": "9", "HOST": "0.0.0.0", "DB": "postgresql://db/llmgw"})
    assert (config.server.port, config.server.host, config.storage.url) == (
        9,
        "0.0.0.0",
        "postgresql://db/llmgw",
    )


def test_env_var_set_but_empty_takes_the_default() -> None:
    # as in the shell: ${VAR:-default} replaces an unset or empty variable; ${VAR} keeps an empty one
    assert parse_config({"auth": {"admin_key": "${K:-fallback}"}}, env={"K": ""}).auth.admin_key == "fallback"
    assert parse_config({"auth": {"admin_key": "${K}"}}, env={"K": ""}).auth.admin_key == ""


def test_several_env_vars_in_one_value() -> None:
    data = {"providers": {"up": {**PROVIDER, "base_url": "https://${HOST}:${PORT:-443}/v1"}}}
    assert parse_config(data, env={"HOST": "h"}).providers["up"].base_url == "https://h:443/v1"  # type: ignore[union-attr]
    problems = problems_of({"auth": {"admin_key": "${A}${B}"}})
    assert problems == [
        ("auth.admin_key", "environment variable A is not set"),
        ("auth.admin_key", "environment variable B is not set"),
    ]


def test_parse_config_reads_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGW_TEST_ADMIN", "from-env")
    assert parse_config({"auth": {"admin_key": "${LLMGW_TEST_ADMIN}"}}).auth.admin_key == "from-env"


# --- llmgw config check ---------------------------------------------------------------------------


def test_config_check_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"providers": {"up": PROVIDER}, "models": {"m": MODEL}}))
    assert run_cli(["config", "check", str(good)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{good}: ok (1 providers, 1 models, 1 routes)" and err == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server:\n  hostname: 0.0.0.0\n", "server.hostname: unknown key"),
        ("server:\n  port: eighty\n", "server.port: Input should be a valid integer"),
        ("providers:\n  x:\n    type: openai\n", "providers.x.base_url: Field required"),
        ("models:\n  m: {provider: nope, upstream_id: m}\n", "models.m.provider: unknown provider 'nope'"),
        ("routes:\n  default: {models: [nope]}\n", "routes.default.models[0]: unknown model 'nope'"),
        (
            "auth:\n  admin_key: ${LLMGW_TEST_UNSET_VAR}\n",
            "auth.admin_key: environment variable LLMGW_TEST_UNSET_VAR",
        ),
        ("server: [1\n", "<root>: invalid YAML"),
        ("- 1\n", "<root>: the top level must be a mapping"),
    ],
)
def test_config_check_bad_file(
    text: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LLMGW_TEST_UNSET_VAR", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert run_cli(["config", "check", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"llmgw: invalid configuration\n{bad}: 1 problem(s)\n")
    assert f"\n  {expected}" in err


def test_config_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["config", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


# --- docs/config.md stays complete and accurate ------------------------------------------------


def _submodels(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's annotation (through unions, Annotated, dict, list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _submodels(arg)]


def config_sections() -> list[tuple[str, str | None, type[BaseModel]]]:
    """Every model in the config as ``(dotted path, provider type or None, model class)``.

    Mapping values are written ``<name>`` and list items ``[]``: ``providers.<name>``,
    ``models.<name>.price``, ``keys[]``. The root is ``""``.
    """
    found: list[tuple[str, str | None, type[BaseModel]]] = []

    def walk(model: type[BaseModel], path: str) -> None:
        tag = None
        if "type" in model.model_fields and path.startswith("providers."):
            tag = get_args(model.model_fields["type"].annotation)[0]
        found.append((path, tag, model))
        for name, field in model.model_fields.items():
            origin = get_origin(field.annotation)
            suffix = ".<name>" if origin is dict else "[]" if origin is list else ""
            for sub in _submodels(field.annotation):
                walk(sub, f"{path}.{name}{suffix}" if path else f"{name}{suffix}")

    walk(Config, "")
    return found


def doc_section(doc: str, path: str, tag: str | None) -> str:
    """The text under the one heading naming `path` (and `type: tag`), up to the next heading."""
    lines = doc.splitlines()
    wanted = [f"`{path}`"] + ([f"`type: {tag}`"] if tag else [])
    starts = [i for i, line in enumerate(lines) if line.startswith("#") and all(w in line for w in wanted)]
    assert len(starts) == 1, f"docs/config.md needs exactly one heading containing {' and '.join(wanted)}"
    body = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("#"):
            break
        body.append(line)
    return "\n".join(body)


def test_walk_covers_every_provider_type() -> None:
    tags = {tag for _, tag, _ in config_sections() if tag}
    assert tags == {"openai", "bedrock", "llama_server", "sentence_transformers", "anthropic"}
    assert len(config_sections()) >= 18


def test_every_config_field_is_documented() -> None:
    doc = CONFIG_DOC.read_text()
    missing = []
    for path, tag, model in config_sections():
        text = doc if path == "" else doc_section(doc, path, tag)
        for name in model.model_fields:
            if f"`{name}`" not in text:
                where = f"{path}.{name}" if path else name
                missing.append(where + (f" (type: {tag})" if tag else ""))
    assert not missing, f"config keys not documented in docs/config.md: {', '.join(missing)}"


def test_documented_error_examples_are_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each `<!-- config-error-example -->` in docs/config.md: the YAML, then the exact CLI output."""
    doc = CONFIG_DOC.read_text()
    pattern = re.compile(
        r"<!-- config-error-example -->\s*```yaml\n(.*?)```\s*"
        r"```text\n\$ llmgw config check bad.yaml\n(.*?)```",
        re.DOTALL,
    )
    examples = pattern.findall(doc)
    assert len(examples) >= 2
    monkeypatch.chdir(tmp_path)
    for text, expected in examples:
        for name in re.findall(r"\$\{(\w+)\}", text):
            monkeypatch.delenv(name, raising=False)
        Path("bad.yaml").write_text(text)
        assert run_cli(["config", "check", "bad.yaml"]) == 2
        assert capsys.readouterr().err == expected


def test_cross_references_of_aliases_azure_and_static_keys() -> None:
    data = {
        "providers": {"az": {**PROVIDER, "azure": True}},
        "models": {"m": {"provider": "az", "upstream_id": "dep"}},
        "routing": {"aliases": {"fast": ["m", "ghost"]}},
        "keys": [{"name": "k", "sha256": "a" * 64, "routes": ["nowhere"], "models": ["phantom"]}],
    }
    assert sorted(problems_of(data)) == [
        ("keys[0].models[0]", "unknown model 'phantom'"),
        ("keys[0].routes[0]", "unknown route 'nowhere'"),
        ("providers.az.api_version", "required when azure is true"),
        ("routing.aliases.fast[1]", "unknown model 'ghost'"),
    ]


def test_error_paths_keep_keys_named_like_provider_types() -> None:
    data = {
        "providers": {"up": PROVIDER},
        "models": {"m": {"provider": "up", "upstream_id": "x", "price": {"openai": 1}}},
    }
    assert only_problem(data)[0] == "models.m.price.openai"


def test_cli_refuses_keys_for_unknown_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path}/k.db'}}\n")
    assert main(["keys", "--config", str(config), "create", "x", "--models", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["keys", "--config", str(config), "create", "x", "--routes", "default"]) == 0


@pytest.mark.parametrize("name", ["nul\x00name", "n" * 201, ""])
def test_cli_refuses_key_names_the_database_would_not_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The same bounds as POST /admin/keys (a NUL crashed the CLI on PostgreSQL)."""
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path}/k.db'}}\n")
    assert main(["keys", "--config", str(config), "create", name]) == 2
    assert "invalid key" in capsys.readouterr().err

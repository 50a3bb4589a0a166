"""Each publish option is declared once, and everything else agrees with it."""

from __future__ import annotations

import inspect

import audb
import audeer
import audformat
import pytest

import audb_publish
from audb_publish import options
from audb_publish.cli import parser
from audb_publish.patching import _ORIGINAL as upstream_publish
from audb_publish.patching import options_from_environment


def keywords(function) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p for p in parameters if p.kind is p.KEYWORD_ONLY}


def test_publish_signature_is_the_spec():
    ours = keywords(audb_publish.publish)
    assert tuple(ours) == options.KEYWORDS
    for name, parameter in ours.items():
        option = options.OPTION[name]
        assert parameter.default == option.default, name
        assert parameter.annotation == option.type, name


def test_publish_signature_extends_upstream():
    upstream = inspect.signature(upstream_publish).parameters
    ours = inspect.signature(audb_publish.publish).parameters
    assert list(ours)[: len(upstream)] == list(upstream)
    for name, parameter in upstream.items():
        assert ours[name].kind is parameter.kind, name
        assert ours[name].default == parameter.default, name
    # ours beyond upstream's are keyword-only
    beyond = list(ours)[len(upstream) :]
    assert all(ours[name].kind is inspect.Parameter.KEYWORD_ONLY for name in beyond)


def test_dry_run_signature_is_the_spec():
    ours = keywords(audb_publish.dry_run)
    assert tuple(ours) == options.DRY_RUN
    for name, parameter in ours.items():
        default = options.DRY_RUN_DEFAULTS.get(name, options.OPTION[name].default)
        assert parameter.default == default, name


# a value of each option as text, and what it means
VALUES = {
    "num_workers": ("3", 3),
    "verbose": ("false", False),
    "pipeline": ("true", True),
    "compression": ("2", 2),
    "checksum_cache": ("no", False),
    "scheduler": ("processes", "processes"),
    "lock_timeout": ("2.5", 2.5),
    "max_requests": ("16", 16),
}


def test_environment_takes_the_options_the_spec_allows():
    allowed = [option.name for option in options.OPTIONS if option.environment]
    assert sorted(allowed) == sorted(VALUES)
    for name in allowed:
        text, value = VALUES[name]
        assert options_from_environment(f"{name}={text}") == {name: value}
    for option in options.OPTIONS:
        if not option.environment:
            with pytest.raises(ValueError, match="is not one of"):
                options_from_environment(f"{option.name}=x")


@pytest.mark.parametrize("command, names", [("publish", None), ("plan", "dry_run")])
def test_flags_come_from_the_spec(command, names):
    names = options.KEYWORDS if names is None else options.DRY_RUN
    flagged = [name for name in names if options.OPTION[name].flag is not None]
    argv = [command, ".", "1.0.0"]
    expected = {}
    for name in flagged:
        option = options.OPTION[name]
        argv.append(option.flag)
        if option.action == "value":
            text, expected[name] = VALUES.get(name, ("x", "x"))
            argv.append(text)
        else:
            expected[name] = option.action == "store_true"
    args = parser().parse_args(argv)
    assert options.from_flags(args, names) == expected
    # without flags: the defaults of publish, or of the flag
    args = parser().parse_args([command, ".", "1.0.0"])
    defaults = {}
    for name in flagged:
        option = options.OPTION[name]
        flag_default = option.flag_default
        defaults[name] = option.default if flag_default is None else flag_default()
    assert options.from_flags(args, names) == defaults


@pytest.mark.parametrize(
    "name, value",
    [
        ("num_workers", 0),
        ("compression", "zstd"),
        ("scheduler", "dask"),
        ("lock_timeout", -1),
        ("max_requests", 0),
    ],
)
def test_one_check_per_option(name, value, tmp_path):
    # the check the spec names is the one publish runs
    option = options.OPTION[name]
    with pytest.raises(ValueError) as checked:
        option.check(value)
    root = str(tmp_path / "db")
    audformat.Database("db").save(root)
    repository = audb.Repository("repo", audeer.mkdir(tmp_path, "host"), "file-system")
    audeer.mkdir(repository.host, repository.name)
    with pytest.raises(ValueError) as published:
        audb_publish.publish(
            root, "1.0.0", repository, previous_version=None, **{name: value}
        )
    assert str(published.value) == str(checked.value)

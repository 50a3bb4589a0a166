"""audb's own publish tests, run against :func:`audb_publish.publish`.

The tests of the installed audb version
(``test_publish.py``, ``test_publish_table.py``
and ``test_attachments.py`` in the ``tests`` folder of its sdist,
downloaded at test time, see ``upstream.py``)
run in a subprocess with ``audb.publish`` patched,
once per variant below.
Every upstream test must pass (or xfail, as upstream marks it),
except those in ``KNOWN_UPSTREAM_FAILURES``,
which must fail, so the list stays honest.

``AUDB_PUBLISH_UPSTREAM_BASELINE=1`` also runs the baseline:
the same files with upstream's own ``audb.publish``,
whose failures must be exactly ``KNOWN_UPSTREAM_FAILURES``.
``python tests/upstream.py --unpatched`` does the same from the command line.

"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest


def _load_helper():
    # By path, so it works whatever the import mode or tests/__init__.py
    name = "audb_publish_tests_upstream"
    if name not in sys.modules:
        path = pathlib.Path(__file__).with_name("upstream.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


upstream = _load_helper()


# Upstream tests (node ids relative to the sdist root)
# that fail for upstream audb itself on this machine,
# i.e. in a baseline run without the patch,
# with the reason. Checked for audb 1.15.0 on Linux,
# Python 3.11, pytest 9.2, pandas 3.1, numpy 2.4:
# all 57 tests of the three files pass there (53 passed, 4 xfailed),
# with pytest.NUM_WORKERS 5 (upstream's default) and 1.
# The list is per audb version, as node ids change between releases.
KNOWN_UPSTREAM_FAILURES: dict[str, dict[str, str]] = {
    "1.15.0": {},
}

VARIANTS = [
    pytest.param(True, {}, None, id="patched"),
    pytest.param(True, {"pipeline": True}, None, id="patched-pipeline"),
    pytest.param(True, {}, 1, id="patched-num_workers=1"),
    pytest.param(True, {"pipeline": True}, 1, id="patched-pipeline-num_workers=1"),
    pytest.param(
        False,
        None,
        None,
        id="baseline-unpatched",
        marks=pytest.mark.skipif(
            os.environ.get("AUDB_PUBLISH_UPSTREAM_BASELINE", "0") in ("", "0"),
            reason="baseline of upstream itself: AUDB_PUBLISH_UPSTREAM_BASELINE=1",
        ),
    ),
]


def known_failures() -> dict[str, str]:
    return KNOWN_UPSTREAM_FAILURES.get(upstream.installed_version(), {})


@pytest.mark.parametrize("patch, defaults, num_workers", VARIANTS)
def test_upstream(tmp_path, patch, defaults, num_workers):
    result = upstream.run(
        patch=patch,
        defaults=defaults,
        num_workers=num_workers,
        workdir=tmp_path,
    )
    known = known_failures()
    print(
        f"upstream {upstream.installed_version()}: {result.counts()} "
        f"in {result.duration:.1f} s, plugin stats {result.stats}"
    )

    # The run itself: finished, collected, plugin active
    assert result.returncode in (0, 1) and result.outcomes, (
        "upstream test run did not complete\n" + result.describe()
    )
    assert result.stats.get("patched") is patch, (
        "upstream_plugin did not report the expected mode\n" + result.describe()
    )
    if patch:
        assert result.stats["defaults"] == defaults, result.describe()
        assert result.stats["publish_calls"] > 0, (
            "no upstream test called the patched audb.publish\n" + result.describe()
        )
    if num_workers is not None:
        assert result.stats["num_workers"] == num_workers, result.describe()

    unexpected = [n for n in result.failed if n not in known]
    not_failing = [n for n in sorted(known) if n not in result.failed]
    problems = []
    if unexpected:
        problems.append(
            f"{len(unexpected)} upstream test(s) failed "
            "that pass for upstream itself:\n  " + "\n  ".join(unexpected)
        )
    if not_failing:
        problems.append(
            f"{len(not_failing)} test(s) in KNOWN_UPSTREAM_FAILURES did not fail "
            "(outcome: "
            + ", ".join(f"{n}={result.outcomes.get(n, 'not run')}" for n in not_failing)
            + "): remove them from the list"
        )
    assert not problems, (
        "\n".join(problems) + "\n\n" + result.describe(unexpected + not_failing)
    )
    # A failure was reported by pytest but not in the junit xml
    assert result.returncode == (1 if result.failed else 0), result.describe()

"""The README's two commands are the ones CI runs and the ones that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_opens_with_main_job_and_test_commands() -> None:
    main_job, tests = _readme_commands()
    assert "--pyargs pytest_walredo.conformance" in main_job
    assert main_job.startswith("bash scripts/setup.sh && ")
    assert tests.startswith("bash scripts/setup.sh && ")
    assert (ROOT / "scripts" / "setup.sh").is_file()
    assert (ROOT / "pytest_walredo" / "conformance" / "__init__.py").is_file()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, f".ci/run does not run the README's test command {tests!r}"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_python_examples_run(pytester) -> None:  # type: ignore[no-untyped-def]
    # The fixtures example, the fixture-factory conftest and the own-property example, as a
    # user would paste them (import paths included).
    fixtures, conftest, prop = _python_blocks()
    assert conftest.startswith("# conftest.py")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        test_fixtures=fixtures,
        test_factory="from pytest_walredo import SyncWalredoClient\n\n"
                     "def test_named_fixture(crashing_walredo):\n"
                     "    assert isinstance(crashing_walredo, SyncWalredoClient)\n"
                     "    assert len(crashing_walredo.ping()) == 8192\n",
        test_property=prop.replace("max_examples=50", "max_examples=5"),
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_readme_corpus_table_is_current() -> None:
    """The README's per-kind table of the reference walredo on the shipped PostgreSQL 15 corpus is
    what the reference gives today: matched where the redo model implements every record of the
    entry (the reference answers through the model, and tests/test_corpus_default.py checks the
    model reproduces those entries), unsupported elsewhere."""
    from pytest_walredo.corpus.default import load_shipped
    from pytest_walredo.corpus.judge import EntryResult, Verdict, kind_table, model_unsupported

    text = (ROOT / "README.md").read_text()
    marker = "<!-- corpus-table: the reference on the shipped PostgreSQL 15 corpus -->\n```\n"
    shown = text[text.index(marker) + len(marker):].split("```", 1)[0]
    now = kind_table(EntryResult(e.name, e.meta.kind, Verdict.UNSUPPORTED if model_unsupported(e) else Verdict.MATCHED)
                     for e in load_shipped(15))
    assert shown == now, ("the README's corpus table is stale; paste the table printed by: pytest --pyargs "
                          "pytest_walredo.conformance.test_corpus --walredo-pg-version 15 --walredo-flavour vanilla")

"""Real PostgreSQL WAL: every entry of the session's corpus (:mod:`pytest_walredo.plugin.corpora`: ``--walredo-corpus``,
or the corpus shipped for the selected version) is one test. The walredo's page must equal the
page PostgreSQL logged for ``wal_consistency_checking``, under the entry's masking rule.

Per entry:

- an entry of another version, or of the other flavour where a record's layout differs between
  flavours (:func:`~pytest_walredo.corpus.judge.entry_applies`), is skipped with the reason;
- against the embedded reference walredo, an entry with a record kind the redo model does not
  implement is ``unsupported``: skipped with the reason, never a pass. In differential mode
  it is sent anyway, and the baseline judges it (both must give the same page, or both fail);
- otherwise the verdict is ``matched``, ``differing`` (the page differs under the mask) or
  ``failed`` (no page); the last two fail the test, with the request, both pages and their
  field-by-field diff in the failure artifacts. In differential mode the baseline must agree too.

Each verdict is reported to the plugin (user property ``walredo_corpus``), which prints the
per-kind table at the end of the run and attaches it to Allure.
"""

from __future__ import annotations

import pytest

from pytest_walredo.corpus.judge import Verdict, entry_applies, judge_answer, model_unsupported
from pytest_walredo.pg.mask import MaskError, mask_page
from pytest_walredo.plugin.corpora import session_corpus
from pytest_walredo.plugin.verdicts import NOT_APPLICABLE, corpus_property


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_entry" not in metafunc.fixturenames:
        return
    corpus = session_corpus(metafunc.config)
    if corpus.entries:
        metafunc.parametrize("corpus_entry", corpus.entries, ids=corpus.ids)
    else:
        why = "no corpus entries (--walredo-corpus off, or no corpus shipped for this version)"
        metafunc.parametrize("corpus_entry", [pytest.param(None, marks=pytest.mark.skip(reason=why))], ids=["none"])


def _masked_summary(expected: bytes, actual: bytes, mask: str, blkno: int) -> str:
    """How many bytes still differ once both pages are masked, and where the first is."""
    try:
        a, b = mask_page(expected, mask, blkno), mask_page(actual, mask, blkno)
    except (MaskError, ValueError) as exc:
        return f"the answer cannot be masked with rule {mask}: {exc}"
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    return f"under mask {mask}: {len(diffs)} byte(s) differ" + (f", first at offset {diffs[0]}" if diffs else "")


def test_corpus_entry(corpus_entry, walredo_pool, walredo_recorder, walredo_bin, request):
    entry = corpus_entry
    meta = entry.meta
    props = request.node.user_properties
    why_not = entry_applies(entry, walredo_bin.pg_version, walredo_bin.flavour)
    if why_not is not None:
        props.append(corpus_property(entry.name, meta.kind, NOT_APPLICABLE, why_not))
        pytest.skip(why_not)
    unsupported = model_unsupported(entry) if walredo_bin.is_reference else None
    if unsupported is not None and not walredo_pool.judge.cross_checks:
        props.append(corpus_property(entry.name, meta.kind, Verdict.UNSUPPORTED, unsupported))
        pytest.skip(f"unsupported by the reference walredo: {unsupported}")

    req = entry.decoded_request()
    with walredo_recorder.example("corpus") as ex:
        ex.set_requests([req])
        ex.set_pages(expected=[entry.expected])
        ex.oracle = "corpus"
        ex.notes.append(f"corpus entry {entry.name}: {meta.kind}, mask {meta.mask}, source: {meta.source}")
        got = walredo_pool.attempt(req)
        ex.set_pages(actual=[got.page])
        ex.requests[0].error = got.error_text
        result = judge_answer(entry, got.page, got.error_text, unsupported=unsupported)
        props.append(corpus_property(entry.name, meta.kind, result.verdict, result.detail))
        if result.verdict is not Verdict.UNSUPPORTED:
            walredo_pool.oracles.add("corpus")
        baseline = walredo_pool.cross_check(req, got)
        if result.verdict in (Verdict.DIFFERING, Verdict.FAILED):
            if walredo_pool.judge.cross_checks:
                ex.notes.append(baseline.message if baseline is not None else
                                f"the baseline gives the same outcome: {got.error_text or 'the same page'}")
            if result.verdict is Verdict.FAILED:
                raise AssertionError(f"[error] corpus entry {entry.name} ({meta.kind}): the walredo failed: "
                                     f"{result.detail}")
            assert entry.expected is not None and got.page is not None
            detail = _masked_summary(entry.expected, got.page, meta.mask, meta.blk)
            ex.notes.append(detail)
            raise AssertionError(f"[wrong-page] corpus entry {entry.name} ({meta.kind}): the page differs from "
                                 f"the one PostgreSQL logged, {detail}")
        if baseline is not None:
            walredo_pool.fail(baseline)
        if result.verdict is Verdict.UNSUPPORTED:
            if not walredo_pool.judge.cross_checks:
                pytest.skip(result.detail)  # e.g. an entry without an expected page: never a pass
            ex.notes.append(f"unsupported: {result.detail}; judged by the baseline alone")

"""Many callers sharing one process through our client, under drawn interleavings.

Each example draws 1..16 jobs (redo requests, cheap pushed-image requests, pings) and a
:class:`~pytest_walredo.interleave.Schedule`; the jobs first run alone one after another on
a second process of the same binary (:meth:`~.pool.ProcessPool.solo`: what each caller must
get), then all together on the pool's process as concurrent callers in the
drawn order, with a drawn cancellation. The oracle is
:func:`~pytest_walredo.interleave.check_run`.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_walredo import strategies as ws
from pytest_walredo.interleave import Status, run_schedule, schedules
from pytest_walredo.protocol import RedoRequest


def _jobs(pg_version, flavour, max_callers):
    cheap = st.builds(lambda tag, page: RedoRequest(tag.rel, tag.blknum, page, ()),
                      ws.buffer_tags(max_block=20), ws.raw_pages())
    full = ws.redo_requests(pg_version=pg_version, flavour=flavour, max_records=3,
                            max_tuple_size=32)
    return st.lists(st.one_of(cheap, st.none(), full), min_size=1, max_size=max_callers)


@given(data=st.data())
def test_each_caller_gets_its_own_page(walredo_pool, walredo_recorder, pg_version, flavour, data):
    """Under any drawn interleaving of up to 16 callers, with a drawn cancellation, a caller
    that gets a page gets the page of its own request; nobody hangs; nobody fails unless a
    cancellation poisoned the client, and then only with WalredoPoisoned."""
    # The schedule is drawn first: when shrinking deletes a job, the picks keep their place in
    # Hypothesis's choice sequence instead of being reinterpreted, so fewer callers still fail.
    schedule = data.draw(schedules(), label="schedule")
    jobs = data.draw(_jobs(pg_version, flavour, 16), label="jobs")
    _run(walredo_pool, walredo_recorder, jobs, schedule)


def _run(pool, recorder, jobs, schedule):
    from pytest_walredo.interleave import check_run

    with recorder.example("concurrent-callers") as ex:
        ex.set_requests(jobs)
        ex.schedule = str(schedule)
        expected = [pool.solo(j) for j in jobs]
        ex.set_pages(expected=expected)
        client = pool.client()
        result = pool.run(run_schedule(client, jobs, schedule, real_io=True))
        ex.timeline = result.timeline.lines()
        ex.set_pages(actual=[o.page if o.status is Status.PAGE else None for o in result.outcomes])
        ex.notes = [f"c{i}: {o.describe()}" for i, o in enumerate(result.outcomes)]
        problems = check_run(result, expected)
        assert not problems, "\n".join(problems) + "\ntimeline:\n" + str(result.timeline)

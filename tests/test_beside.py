"""Work on a second core (relrocheck/beside.py): a forked child's result, and the fallbacks."""

from __future__ import annotations

import os

from relrocheck.beside import Beside, Halves


def test_the_child_computes_the_result_in_another_process() -> None:
    parent = os.getpid()
    with Beside(lambda: (os.getpid(), sum(range(1000)))) as beside:
        pid, total = beside.result()
    assert total == 499500
    if len(os.sched_getaffinity(0)) >= 2:
        assert pid != parent  # forked: the work ran beside this process


def test_a_failing_child_is_redone_here() -> None:
    parent = os.getpid()

    def work() -> int:
        if os.getpid() != parent:
            raise RuntimeError("only in the child")
        return 42

    with Beside(work) as beside:
        assert beside.result() == 42


def test_not_worth_it_runs_inline() -> None:
    with Beside(os.getpid, worth=False) as beside:
        assert beside.result() == os.getpid()


def test_cancel_reaps_the_child() -> None:
    beside = Beside(lambda: sum(range(10 ** 7)))
    child = beside._child
    beside.cancel()
    if child is not None:
        try:
            os.waitpid(child[0], os.WNOHANG)
        except ChildProcessError:
            pass  # reaped already: no zombie left
        else:
            raise AssertionError("the child was not reaped")


def test_halves_cover_every_index_once_from_both_ends() -> None:
    n = 5000
    halves = Halves(n)
    with Beside(lambda: list(halves.front())) as beside:
        mine = list(halves.back())
        theirs = beside.result()
    done = set(mine) | set(theirs)
    assert done == set(range(n))
    assert len(mine) + len(theirs) <= n + 1  # at most the meeting index twice
    assert theirs == sorted(theirs) and mine == sorted(mine, reverse=True)


def test_halves_without_a_child_leave_the_front_what_the_back_did_not_take() -> None:
    halves = Halves(10)
    back = halves.back()
    taken = [next(back) for _ in range(4)]  # 9, 8, 7 done; 6 still being worked on
    assert taken == [9, 8, 7, 6]
    assert list(halves.front()) == [0, 1, 2, 3, 4, 5, 6]

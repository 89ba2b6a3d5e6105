"""The race runner of the shipped harness (``recrm_core.testing.run_together``): what
every race test of the core and of the plugins relies on. Its workers here touch no
database: what is tested is the runner (the start line, the outcomes, the failures)."""

from __future__ import annotations

import os
import re
import time

import pytest

from recrm_core.testing import RaceFailed, StartLine, run_together


def _timed(delay: float, start: StartLine) -> tuple[int, float, float]:
    """Once every process runs (a first round), arrives at the start line after
    ``delay``; its pid, when it arrived and when it was released (``time.time()``: one
    clock for every process of the machine)."""
    start.wait()
    time.sleep(delay)
    arrived = time.time()
    start.wait()
    return os.getpid(), arrived, time.time()


def _finishing_late(n: int, start: StartLine) -> str:
    start.wait()
    time.sleep(0.3 * (3 - n))  # the first one given finishes last
    return f"outcome {n}"


def _raising_when(n: int, bad: int, start: StartLine) -> int:
    if n == bad:
        raise ValueError(f"boom in worker {n}")
    start.wait()
    return n


def _exiting_when(n: int, bad: int, start: StartLine) -> int:
    if n == bad:
        os._exit(7)  # no report, no traceback: as a process killed or crashed
    start.wait()
    return n


def _sleeping_when(n: int, bad: int, start: StartLine) -> int:
    start.wait()
    if n == bad:
        time.sleep(600)
    return n


def _unpicklable(start: StartLine) -> object:
    start.wait()
    return lambda: None


def test_the_start_line_releases_no_one_before_the_last_arrives() -> None:
    delays = [0.0, 1.0, 2.0]
    results = run_together(_timed, [(d,) for d in delays])
    last_arrival = max(arrived for _, arrived, _ in results)
    # The last arrived well after the first, and nobody left before it.
    assert last_arrival - min(arrived for _, arrived, _ in results) >= 1.0
    assert all(released >= last_arrival for _, _, released in results), results
    # one process each, none of them this one
    assert len({pid for pid, _, _ in results} | {os.getpid()}) == len(delays) + 1


def test_outcomes_come_in_the_order_of_the_arguments() -> None:
    assert run_together(_finishing_late, [(n,) for n in range(3)]) == [
        "outcome 0", "outcome 1", "outcome 2"]


def test_a_process_that_raises_is_named_with_its_traceback() -> None:
    with pytest.raises(RaceFailed) as failed:
        run_together(_raising_when, [(n, 2) for n in range(3)], timeout=120)
    message = str(failed.value)
    assert message.startswith("run_together: 3 of 3 processes failed\n"), message
    # the one that raised first, with its arguments, pid and traceback ...
    first = message.split("\n", 2)[1]
    assert re.fullmatch(r"process 2 of 3 \(pid \d+\): _raising_when\(2, 2, start\) raised:",
                        first), message
    assert "Traceback (most recent call last)" in message
    assert 'raise ValueError(f"boom in worker {n}")' in message
    assert "ValueError: boom in worker 2" in message
    # ... and the others, released by the broken start line, one line each
    for n in (0, 1):
        assert re.search(rf"process {n} of 3 \(pid \d+\): _raising_when\({n}, 2, start\): "
                         "the start line was broken$", message, re.M), message
    assert message.count("Traceback") == 1


def test_a_process_that_dies_without_reporting_is_named_with_its_exit_code() -> None:
    with pytest.raises(RaceFailed) as failed:
        run_together(_exiting_when, [(n, 1) for n in range(2)], timeout=120)
    message = str(failed.value)
    assert re.search(r"process 1 of 2 \(pid \d+\): _exiting_when\(1, 1, start\) "
                     "ended with exit code 7 without reporting", message), message
    assert "process 0 of 2" in message and "the start line was broken" in message


def test_a_process_still_running_at_the_timeout_is_named_and_killed() -> None:
    began = time.monotonic()
    with pytest.raises(RaceFailed) as failed:
        run_together(_sleeping_when, [(n, 0) for n in range(2)], timeout=30)
    assert time.monotonic() - began < 120  # not the worker's 600 s
    message = str(failed.value)
    assert message.startswith("run_together: 1 of 2 processes failed\n"), message
    assert re.search(r"process 0 of 2 \(pid (\d+)\): _sleeping_when\(0, 0, start\) "
                     "had not finished 30 s after the start \\(killed\\)", message), message
    pid = int(re.search(r"pid (\d+)", message).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped


def test_a_value_that_cannot_cross_is_the_workers_error() -> None:
    with pytest.raises(RaceFailed, match=r"_unpicklable\(start\) raised:\n(.|\n)*"
                                         r"(PicklingError|AttributeError)"):
        run_together(_unpicklable, [()])

"""The background checkpoint writer: jobs in order, finished before leaving, errors reported."""
import threading

import pytest

from models.training.writer import BackgroundWriter


def test_background_writer_runs_jobs_in_order_and_finishes_them_before_leaving():
    done, threads = [], []

    def job(name, release):
        release.wait(10)
        threads.append(threading.current_thread() is not threading.main_thread())
        done.append(name)
    first, second = threading.Event(), threading.Event()
    with BackgroundWriter() as writer:
        writer.submit(job, "first", first)
        assert done == []  # still pending: training goes on meanwhile
        first.set()
        writer.submit(job, "second", second)  # finishes the first before it starts
        assert done == ["first"]
        second.set()
    assert done == ["first", "second"] and all(threads)


def test_background_writer_finishes_the_pending_write_on_an_error_and_reports_a_job_error():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter() as writer:
            writer.submit(done.append, "written")
            raise KeyboardInterrupt  # Ctrl-C while the file is being written
    assert done == ["written"]

    def fail():
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        with BackgroundWriter() as writer:
            writer.submit(fail)

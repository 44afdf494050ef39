"""Writing checkpoints in a background thread while training goes on."""
import threading


class BackgroundWriter:
    """Runs one write job at a time in a thread, so training goes on while a checkpoint is saved.

    `submit` first finishes the job still pending; leaving the `with` block finishes it too, also on
    an error or Ctrl-C. A job's exception (KeyboardInterrupt included) is raised in the caller's
    thread at the next `submit`, `wait` or exit, never lost.
    """

    def __init__(self):
        self._thread = None
        self._error = None

    def _run(self, job, args, kwargs):
        try:
            job(*args, **kwargs)
        except BaseException as err:  # handed to the training thread, which decides
            self._error = err

    def submit(self, job, *args, **kwargs) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(job, args, kwargs), name="checkpoint-writer")
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.wait()
            return
        try:  # the training error is the one to report; the pending file is still finished
            self.wait()
        except BaseException:
            pass

"""The staging folder a run writes into (``--out/.ane-verify-staging-<pid>-*``) before its artifacts are
moved into place, and what happens to it when the run is stopped.

SIGINT and SIGTERM raise ``Stopped`` in the main thread (``stop_on_signals``): the pipelines' cleanup
removes the staging folder (and ``--out`` if the run created it) as for any failure, and the CLI exits
130 or 143 with one line. A SIGKILL cannot be caught: the folder it leaves is removed by the next run
into the same ``--out`` (``create``), which says so. The folder's name carries the process id, so a
folder of a run still going in the same ``--out`` is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

PREFIX = ".ane-verify-staging-"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """The run got SIGINT or SIGTERM (a BaseException, as KeyboardInterrupt: ``except Exception`` in the
    libraries does not swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum, frame):
    for other in SIGNALS:  # a second signal during the cleanup stops the process at once
        signal.signal(other, signal.SIG_DFL)
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM raise ``Stopped`` inside the block (main thread only; elsewhere a no-op)."""
    try:
        previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _owner_alive(folder: Path) -> bool:
    pid = folder.name[len(PREFIX) :].split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def remove_leftovers(out: Path, stream=None) -> list[Path]:
    """Remove staging folders in ``out`` whose run is gone (killed); say so in one line."""
    left = [p for p in sorted(Path(out).glob(PREFIX + "*")) if p.is_dir() and not _owner_alive(p)]
    for folder in left:
        shutil.rmtree(folder, ignore_errors=True)
    if left:
        names = ", ".join(p.name for p in left)
        print(
            f"ane-verify: note: removed {len(left)} staging folder(s) an earlier run left in {out} when it "
            f"was killed: {names}",
            file=stream or sys.stderr,
        )
    return left


def create(out: Path) -> Path:
    """A new staging folder in ``out`` (which exists), after removing leftovers of killed runs."""
    remove_leftovers(out)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=out))

"""A decoder's functions converted side by side, one forked child process each.

coremltools' conversion is pure Python, one core: on a 2-core machine converting prefill and decode in
two processes takes about the time of the longer one instead of the sum. Each child is forked from the
process holding the ANE twin, so the twin's weights are shared pages (copy-on-write, never written), not
copies; a child converts its function, saves it to its part package and exits.

Memory is measured for the whole tree, since a child's memory is the machine's too: the proportional set
size (``Pss`` in ``/proc/PID/smaps_rollup``: a page shared by k processes counts 1/k in each) of this
process and its children, summed, sampled every ``SAMPLE_SECONDS``. Summed RSS would count the twin once
per process.

Linux only (``can_fork``): on macOS forking a process that has loaded Core ML's frameworks is unsafe,
and conversion there stays sequential.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

SAMPLE_SECONDS = 0.25


def can_fork() -> bool:
    """Two or more cores, Linux, and a kernel that reports proportional set sizes."""
    return (
        sys.platform.startswith("linux")
        and (os.cpu_count() or 1) >= 2
        and Path(f"/proc/{os.getpid()}/smaps_rollup").is_file()
    )


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass  # the child has just exited
    return 0


def _child(job: Callable[[], dict], channel) -> None:
    try:
        result = job()
        channel.send(("ok", result))
        code = 0
    except BaseException as error:  # everything goes back to the parent, which raises it
        channel.send(("error", f"{type(error).__name__}: {error}", traceback.format_exc()))
        code = 1
    channel.close()
    os._exit(code)  # no atexit handlers, no flushing of the parent's inherited buffers


def _receive(name: str, receive, messages: dict) -> None:
    """The child's message, if it sent one (a child that died closes its end: EOF, no message)."""
    if name not in messages and receive.poll():
        try:
            messages[name] = receive.recv()
        except EOFError:
            messages[name] = None


class ChildFailed(RuntimeError):
    """A child process's job raised, or the child died (killed, out of memory)."""


def run_forked(jobs: dict[str, Callable[[], dict]]) -> tuple[dict[str, dict], float]:
    """Run each job (name -> a function returning a small picklable dict) in its own forked child, all at
    once; their results, and the process tree's peak proportional set size in MB while they ran."""
    context = multiprocessing.get_context("fork")
    children = {}
    for name, job in jobs.items():
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(job, send), name=f"convert-{name}", daemon=True)
        process.start()
        send.close()
        children[name] = (process, receive)
    peak_kb, messages = 0, {}
    try:
        while any(process.is_alive() for process, _ in children.values()):
            tree = _pss_kb(os.getpid()) + sum(_pss_kb(p.pid) for p, _ in children.values() if p.is_alive())
            peak_kb = max(peak_kb, tree)
            for name, (_, receive) in children.items():
                _receive(name, receive, messages)
            time.sleep(SAMPLE_SECONDS)
        for name, (process, receive) in children.items():
            process.join()
            _receive(name, receive, messages)
    finally:
        for process, receive in children.values():
            if process.is_alive():
                process.kill()
                process.join()
            receive.close()
    results = {}
    for name, (process, _) in children.items():
        message = messages.get(name)
        if message is None or message[0] != "ok":
            why = message[1] if message else f"the process ended with exit code {process.exitcode}"
            raise ChildFailed(f"converting {name} in a child process failed: {why}")
        results[name] = message[1]
    return results, peak_kb * 1024 / 1e6

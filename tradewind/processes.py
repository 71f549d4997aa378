"""Small helpers for the child processes Tradewind forks (DAG parsing, tries)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
from collections.abc import Callable
from typing import NoReturn

logger = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def describe_exit(status: int) -> str:
    """A wait status in words: ``killed by SIGKILL`` or ``exit code 3``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None


def _prctl(option: int, value: int | bytes) -> None:
    """Linux's prctl for this process; nothing where there is no such call."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.prctl(option, value, 0, 0, 0)


def name_this_process(name: str) -> None:
    """Give this process the name that ``ps -o comm``, ``top`` and /proc/PID/comm show
    (at most 15 bytes on Linux). A process forked from a daemon keeps the daemon's
    command line, so without a name a fork server would look like a second scheduler."""
    _prctl(_PR_SET_NAME, name.encode()[:15])


def set_parent_death_signal(sig: signal.Signals) -> None:
    """Have the kernel send ``sig`` to this process when the thread that forked it ends
    (Linux only; elsewhere nothing happens, and the caller's own watch has to do)."""
    _prctl(_PR_SET_PDEATHSIG, int(sig))


def configure_daemon_logging(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        handler.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def live_for_a_client(what: str, body: Callable[[], None]) -> NoReturn:
    """The whole life of a helper process that serves another (a fork server, its
    recorder): Ctrl-C is the client's to handle, SIGTERM ends it at once; it exits 0 when
    ``body`` returns and 1, with the error logged, if it raises. A forked process must
    never return into its parent's code."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        body()
        code = 0
    except BaseException:
        logger.exception("The %s failed", what)
    finally:
        os._exit(code)


# --- huge pages for a forking parent -------------------------------------------------------
# A fork copies the parent's page table entries, and the child's exit tears its copy
# down: for a warm parent with tens of MB of Python heap that is most of what a try's
# process costs the kernel. Memory held in 2 MB folios is copied and torn down a folio
# at a time instead of a page at a time (and a page that either side writes later is
# still copied alone). Linux 6.1 and later collapse a populated range into one such
# folio on request (MADV_COLLAPSE), whatever the system's THP setting is; a system
# whose administrator chose "never" is left alone all the same.
_MADV_COLLAPSE = 25
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"
_HUGE = 2 * 1024 * 1024
# Only ranges this full are collapsed: the pages that were not there yet become
# resident too, so this bounds what the collapse adds to the process's memory.
_MIN_RESIDENT = 0.9


def collapse_heap_into_huge_pages() -> int:
    """Move this process's densely used private memory into 2 MB folios, best effort (an
    older kernel, another system or a failed call leaves it as it is); the number of
    bytes collapsed. Call it in a parent about to fork many children, once it has
    loaded what they use."""
    libc = _libc()
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    if libc is None or page <= 0 or _HUGE % page or _huge_pages_refused():
        return 0
    try:
        madvise, mincore = libc.madvise, libc.mincore
        with open("/proc/self/maps", encoding="ascii") as maps:
            ranges = [_writable_private_range(line) for line in maps]
    except (AttributeError, OSError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    pages = _HUGE // page
    resident = ctypes.create_string_buffer(pages)
    collapsed = 0
    for start, end in filter(None, ranges):
        chunk = (start + _HUGE - 1) // _HUGE * _HUGE
        while chunk + _HUGE <= end:
            if mincore(chunk, _HUGE, resident) == 0:
                present = sum(byte & 1 for byte in resident.raw)
                if present >= pages * _MIN_RESIDENT and madvise(chunk, _HUGE, _MADV_COLLAPSE) == 0:
                    collapsed += _HUGE
            chunk += _HUGE
    logger.debug("Collapsed %d MB of this process's memory into huge pages", collapsed >> 20)
    return collapsed


def _huge_pages_refused(setting: str = _THP_SETTING) -> bool:
    """Whether the system's transparent huge pages are set to ``[never]``."""
    try:
        with open(setting, encoding="ascii") as selected:
            return "[never]" in selected.read()
    except OSError:
        return False  # no such setting: the madvise call decides


def _writable_private_range(line: str) -> tuple[int, int] | None:
    """The span of a /proc/self/maps line if it is anonymous private read-write memory
    (the heap, Python's arenas), else None."""
    fields = line.split()
    if len(fields) < 5 or fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
        return None
    start, end = fields[0].split("-")
    return int(start, 16), int(end, 16)

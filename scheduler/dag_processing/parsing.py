"""Parsing DAG files in forked children, several at once, each with a timeout.

A child imports one file, serializes its DAGs and sends the JSON back through a pipe.
Whatever the file does at import time (hang, ``os._exit``, crash the interpreter, print
megabytes) stays inside the child: the parent reports it as an import error with the
file and, where it can be recovered, the line (from the child's own stack).
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import re
import selectors
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tradewind.dag_loader import ImportErrorInfo, error_from_exception, load_dag_file
from tradewind.processes import describe_exit, name_this_process

logger = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 0.5
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


@dataclass
class ParsedFile:
    """What parsing one file produced."""

    fileloc: str
    dags: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ImportErrorInfo] = field(default_factory=list)
    duration: float = 0.0


@dataclass
class _Child:
    path: Path
    pid: int
    fd: int
    fault: BinaryIO
    started: float
    deadline: float
    chunks: list[bytes] = field(default_factory=list)
    timed_out: bool = False


# Imported once in the parent so that every forked child starts with them loaded.
_WARM_MODULES = (
    "tradewind.sdk.dag",
    "tradewind.sdk.decorators",
    "tradewind.sdk.taskgroup",
    "tradewind.operators.python",
    "tradewind.operators.bash",
    "tradewind.operators.empty",
    "tradewind.serialization",
    "tradewind.schedules",
    "croniter",
    "jsonschema",
    "jinja2",
)


def warm_up() -> None:
    import importlib

    for name in _WARM_MODULES:
        importlib.import_module(name)


def parse_files(
    paths: list[Path], *, timeout: float, parallelism: int, output_dir: Path | None = None
) -> list[ParsedFile]:
    """Parse every file, ``parallelism`` children at a time; results in input order."""
    warm_up()
    pending = list(reversed(paths))
    running: dict[int, _Child] = {}
    results: dict[Path, ParsedFile] = {}
    selector = selectors.DefaultSelector()
    try:
        while pending or running:
            while pending and len(running) < parallelism:
                child = _spawn(pending.pop(), timeout, output_dir)
                running[child.fd] = child
                selector.register(child.fd, selectors.EVENT_READ, child)
            _pump(selector, running, results)
    finally:
        for child in running.values():
            _kill(child)
        selector.close()
    return [results[p] for p in paths]


def _pump(
    selector: selectors.BaseSelector, running: dict[int, _Child], results: dict[Path, ParsedFile]
) -> None:
    now = time.monotonic()
    wait = max(0.0, min(c.deadline for c in running.values()) - now)
    for key, _ in selector.select(timeout=min(wait, 1.0)):
        child: _Child = key.data
        data = os.read(child.fd, 1 << 20)
        if data:
            child.chunks.append(data)
            continue
        selector.unregister(child.fd)
        del running[child.fd]
        results[child.path] = _finish(child)
    now = time.monotonic()
    for child in [c for c in running.values() if c.deadline <= now]:
        child.timed_out = True
        selector.unregister(child.fd)
        del running[child.fd]
        _kill(child)
        results[child.path] = _finish(child)


def _spawn(path: Path, timeout: float, output_dir: Path | None) -> _Child:
    read_fd, write_fd = os.pipe()
    fault = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _finish
    output = _output_file(path, output_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        os.close(read_fd)
        _child_main(path, write_fd, fault.fileno(), output)
    os.close(write_fd)
    started = time.monotonic()
    return _Child(path, pid, read_fd, fault, started, started + timeout)


def _output_file(path: Path, output_dir: Path | None) -> str:
    if output_dir is None:
        return os.devnull
    name = re.sub(r"[^\w.-]", "_", str(path).lstrip("/"))
    output_dir.mkdir(parents=True, exist_ok=True)
    return str(output_dir / f"{name}.log")


def _child_main(path: Path, write_fd: int, fault_fd: int, output: str) -> None:  # pragma: no cover
    """Runs in the forked child: import the file, send the result, exit."""
    real_exit = os._exit
    try:
        name_this_process("tw-dag-parse")
        os.setpgid(0, 0)  # kill the whole group if the file starts processes
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        faulthandler.enable(file=fault_fd, all_threads=True)
        faulthandler.register(signal.SIGUSR1, file=fault_fd, all_threads=True, chain=False)

        def _exit_hook(code: int) -> None:
            stack = "".join(traceback.format_stack())
            _send(write_fd, {"exit_called": code, "stack": stack})
            real_exit(code)

        os._exit = _exit_hook  # type: ignore[assignment]
        _send(write_fd, _parse(path))
    except BaseException as exc:
        _send(write_fd, {"fatal": "".join(traceback.format_exception(exc))})
    finally:
        real_exit(0)


def _parse(path: Path) -> dict[str, Any]:  # pragma: no cover - runs in the child
    from tradewind.serialization import serialize_dag

    result = load_dag_file(path)
    dags, errors = [], list(result.errors)
    for dag in result.dags:
        try:
            serialized = serialize_dag(dag)
            json.dumps(serialized)
            dags.append(serialized)
        except Exception as exc:
            errors.append(error_from_exception(exc, result.fileloc))
    return {
        "dags": dags,
        "errors": [_error_dict(e) for e in errors],
        "duration": result.duration,
    }


def _error_dict(error: ImportErrorInfo) -> dict[str, Any]:
    return {
        "fileloc": error.fileloc,
        "lineno": error.lineno,
        "message": error.message,
        "stacktrace": error.stacktrace,
    }


def _send(fd: int, payload: dict[str, Any]) -> None:  # pragma: no cover - runs in the child
    data = json.dumps(payload).encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _kill(child: _Child) -> None:
    try:
        os.kill(child.pid, signal.SIGUSR1)  # ask faulthandler for the child's stack
        time.sleep(0.05)
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _finish(child: _Child) -> ParsedFile:
    _, status = os.waitpid(child.pid, 0)
    os.close(child.fd)
    child.fault.seek(0)
    fault_text = child.fault.read().decode(errors="replace")
    child.fault.close()
    fileloc = str(child.path.resolve())
    duration = time.monotonic() - child.started
    parsed = ParsedFile(fileloc=fileloc, duration=duration)
    payload = _decode(b"".join(child.chunks))
    if child.timed_out:
        lineno = _line_from_stack(fault_text, fileloc)
        parsed.errors.append(
            ImportErrorInfo(
                fileloc,
                lineno,
                f"importing the file took longer than the {child.deadline - child.started:g} s "
                "timeout (TRADEWIND_DAG_FILE_PROCESSOR_TIMEOUT_SECONDS); is it waiting on "
                "a network call or an endless loop at import time?",
                fault_text,
            )
        )
    elif payload is not None and "exit_called" in payload:
        parsed.errors.append(
            ImportErrorInfo(
                fileloc,
                _line_from_stack(payload["stack"], fileloc),
                f"the DAG file called os._exit({payload['exit_called']}) while being imported",
                payload["stack"],
            )
        )
    elif payload is not None and "fatal" in payload:
        parsed.errors.append(
            ImportErrorInfo(fileloc, None, "the DAG file processor failed", payload["fatal"])
        )
    elif payload is not None:
        parsed.dags = payload["dags"]
        parsed.errors = [ImportErrorInfo(**e) for e in payload["errors"]]
        parsed.duration = payload["duration"]
    else:
        parsed.errors.append(
            ImportErrorInfo(
                fileloc,
                _line_from_stack(fault_text, fileloc),
                f"the interpreter importing the file died ({describe_exit(status)})",
                fault_text,
            )
        )
    return parsed


def _decode(data: bytes) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _line_from_stack(stack: str, fileloc: str) -> int | None:
    """The innermost line of ``fileloc`` in a Python or faulthandler stack dump."""
    lines = [int(m["line"]) for m in _FRAME.finditer(stack) if m["file"] == fileloc]
    if not lines:
        return None
    # faulthandler prints the innermost frame first; traceback prints it last
    return lines[0] if "most recent call first" in stack else lines[-1]

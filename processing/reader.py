"""Read an uploaded file in a child process with bounded memory and CPU time.

calamine (Rust) aborts the whole process when an allocation fails: a 1.5 KB workbook with cells at
A1 and XFD1048576 asks for 512 GB, and the worker that read it died with the import still
`processing`. Here a child dies instead. `read_in_child` starts `python -m processing.reader`,
which sets RLIMIT_AS and RLIMIT_CPU on itself, parses with processing.parsing.parse_rows and
streams messages back as JSON lines on its stdout (JSON, not pickle: the parent must not run
whatever a child fed with hostile bytes might send). The pipe's back-pressure keeps only a few rows
in flight, so the parent's memory does not grow with the file.

Messages, one JSON array a line: ["ready"] once the file is opened, ["warning", text],
["sheet", head] as each worksheet's header is found (parsing._sheet_head),
["row", worksheet, row, [[header, value], ...]], then one of ["done", peak_kb],
["rejected", message, peak_kb], ["memory"], ["error", text].
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO

from .parsing import FileRejected, RowLimits, SourceRow, parse_rows

logger = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Rows cross the pipe in chunks this big: fewer wake-ups of either process than 8 KB ones.
_PIPE_BUFFER_BYTES = 256 * 1024


def too_big_message(memory_mb: int) -> str:
    return (
        f"This file could not be read within the {memory_mb:,} MB of memory an import may use: it is too "
        "big, or a sheet has a stray cell far below or right of its data (Ctrl+End in Excel shows the "
        "last cell). Delete the empty rows and columns or split the file, and upload it again."
    )


def too_slow_message(cpu_seconds: int) -> str:
    return (
        f"Reading this file took longer than the {cpu_seconds:,} seconds an import may use. "
        "Split it into smaller files and upload them one by one."
    )


class ReaderFailed(Exception):
    """The child failed in a way that is a bug, not a property of the file (logged with its cause)."""


def read_in_child(
    path: str | os.PathLike,
    filename: str,
    *,
    max_rows: int,
    warnings: list[str],
    limits: RowLimits,
    memory_mb: int,
    cpu_seconds: int,
    header_rows: Mapping[str, int] | None = None,
    sheets: list[dict] | None = None,
) -> Iterator[SourceRow]:
    """processing.parsing.iter_rows's contract, read by a child process (see the module docstring).

    FileRejected for the file's type, encoding or a damaged workbook is raised before this returns,
    as parse_rows does; a child that runs out of memory or time raises FileRejected too.
    """
    request = {
        "path": os.fspath(path),
        "filename": filename,
        "max_rows": max_rows,
        "limits": asdict(limits),
        "memory_mb": memory_mb,
        "cpu_seconds": cpu_seconds,
        "header_rows": dict(header_rows or {}),
    }
    # Closed by _Child.stop, when the rows are read or abandoned.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    child = _Child(
        subprocess.Popen(
            [sys.executable, "-m", "processing.reader"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_child_environment(),
            bufsize=_PIPE_BUFFER_BYTES,
        ),
        stderr,
        memory_mb=memory_mb,
        cpu_seconds=cpu_seconds,
    )
    try:
        child.process.stdin.write(json.dumps(request).encode())
        child.process.stdin.close()
        child.expect_ready()
    except BaseException:
        child.stop()
        raise
    return child.rows(warnings, sheets)


class _Child:
    def __init__(self, process: subprocess.Popen, stderr: IO[bytes], *, memory_mb: int, cpu_seconds: int):
        self.process = process
        self.stderr = stderr
        self.memory_mb = memory_mb
        self.cpu_seconds = cpu_seconds
        self.rows_read = 0

    def expect_ready(self) -> None:
        message = self._next()
        if message[0] != "ready":
            self._fail(message)

    def rows(self, warnings: list[str], sheets: list[dict] | None = None) -> Iterator[SourceRow]:
        try:
            while True:
                message = self._next()
                kind = message[0]
                if kind == "row":
                    self.rows_read += 1
                    _, worksheet, row, cells = message
                    yield SourceRow(
                        worksheet=worksheet, row=row, cells={header: value for header, value in cells}
                    )
                elif kind == "warning":
                    warnings.append(message[1])
                elif kind == "sheet":
                    if sheets is not None:
                        sheets.append(message[1])
                elif kind == "done":
                    self._log_peak(message[1], "read")
                    return
                else:
                    self._fail(message)
        finally:
            self.stop()

    def _next(self) -> list:
        line = self.process.stdout.readline()
        try:
            return json.loads(line)
        except ValueError:  # nothing more, or a line cut short: the child has ended
            return ["exited"]

    def _fail(self, message: list) -> None:
        kind = message[0]
        if kind == "rejected":
            self._log_peak(message[2], "rejected")
            raise FileRejected(message[1])
        if kind == "memory":
            logger.info("reader ran out of memory (MemoryError)")
            raise FileRejected(too_big_message(self.memory_mb))
        if kind == "error":
            raise ReaderFailed(f"the reader failed: {message[1]}")
        if kind == "exited":
            returncode = self.process.wait()
            cause = self._stderr_tail()
            logger.info("reader exited with %s: %s", returncode, cause)
            if returncode == -signal.SIGXCPU:
                raise FileRejected(too_slow_message(self.cpu_seconds))
            # calamine aborts on a failed allocation, the kernel kills a process out of memory, and a
            # MemoryError outside main's handler ends the child with a traceback.
            if returncode in (-signal.SIGABRT, -signal.SIGKILL, -signal.SIGSEGV, -signal.SIGBUS) or (
                "MemoryError" in cause
            ):
                raise FileRejected(too_big_message(self.memory_mb))
            raise ReaderFailed(f"the reader exited with {returncode}: {cause}")
        raise ReaderFailed(f"unexpected message from the reader: {kind!r}")

    def _log_peak(self, peak_kb: int, outcome: str) -> None:
        logger.info(
            "file %s in a child process: %s rows, peak RSS %.0f MB",
            outcome,
            self.rows_read,
            peak_kb / 1024,
            extra={"reader_peak_rss_kb": peak_kb, "reader_rows": self.rows_read},
        )

    def _stderr_tail(self) -> str:
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - 2000))
        return self.stderr.read().decode("utf-8", "replace").strip()

    def stop(self) -> None:
        """End the child (it may still be reading when the caller stops early) and free its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.stderr.close()


def _child_environment() -> dict[str, str]:
    environment = dict(os.environ)
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), path]))
    # A Rust panic's backtrace would only fill the log.
    environment["RUST_BACKTRACE"] = "0"
    return environment


# --- the child ---------------------------------------------------------------------------------


def _limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the soft limit ends the process; SIGKILL at the hard one if it were caught.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _peak_rss_kb() -> int:
    """This process's peak resident memory in KB. ru_maxrss would include the parent's memory at
    fork time (Linux keeps it across exec); VmHWM belongs to the memory map exec created."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    _limit_resources(request["memory_mb"], request["cpu_seconds"])
    out = open(sys.stdout.fileno(), "wb", buffering=_PIPE_BUFFER_BYTES, closefd=False)  # noqa: SIM115

    def send(*message: object) -> None:
        out.write(json.dumps(message).encode() + b"\n")

    warnings: list[str] = []
    heads: list[dict] = []
    sent = heads_sent = 0

    def send_warnings() -> None:
        nonlocal sent, heads_sent
        for warning in warnings[sent:]:
            send("warning", warning)
        sent = len(warnings)
        for head in heads[heads_sent:]:
            send("sheet", head)
        heads_sent = len(heads)

    try:
        rows = parse_rows(
            request["path"],
            request["filename"],
            max_rows=request["max_rows"],
            warnings=warnings,
            limits=RowLimits(**request["limits"]),
            header_rows=request.get("header_rows") or {},
            sheets=heads,
        )
        send("ready")
        out.flush()
        for row in rows:
            if sent < len(warnings) or heads_sent < len(heads):
                send_warnings()
            send("row", row.worksheet, row.row, list(row.cells.items()))
        send_warnings()
        send("done", _peak_rss_kb())
    except FileRejected as exc:
        send_warnings()
        send("rejected", str(exc), _peak_rss_kb())
    except MemoryError:
        send("memory")
    except Exception as exc:  # reported to the parent, which logs it as a bug
        send("error", repr(exc))
    out.flush()


if __name__ == "__main__":
    main()

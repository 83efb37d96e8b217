"""A render in a child process: the daemon's event loop keeps its interpreter lock to itself.

Composing frames is Python and Pillow work that holds the GIL. On a thread of the daemon's own
process it made every API request wait its turn behind the frame loop (benchmarks/http_load.py:
the loop woke several milliseconds late each time while a render ran, and fell behind at 500
requests/s). In a child the render has its own interpreter, and it runs at a lower CPU priority
(nice), so on a busy machine the API is served first and the render takes what is left.

Children are forked from a server process that imported the renderer and loaded its voice once
(forkserver, preload.py), so a render starts in milliseconds, not the seconds a fresh interpreter
needs for its imports and the voice.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import threading
from typing import Any, Callable

from avatar_daemon import RenderError

NICE = 5  # the render's CPU priority below the daemon's (Linux nice; a third of the daemon's share)

_CTX = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                   else "spawn")
if _CTX.get_start_method() == "forkserver":
    _CTX.set_forkserver_preload([__name__, "avatar_daemon_plugins.local_renderer.renderer",
                                 "avatar_daemon_plugins.local_renderer.preload"])


class Cancel:
    """Set by the daemon; the child sees it at its next frame, and sees the daemon gone the same way."""

    def __init__(self) -> None:
        self.theirs, self._ours = _CTX.Pipe(duplex=False)

    def set(self) -> None:
        with contextlib.suppress(OSError):  # the child has ended already
            self._ours.send(True)

    def close(self) -> None:
        self._ours.close()


class _Seen:
    """The child's side of a Cancel: what the frame loop asks (`is_set`) each frame."""

    def __init__(self, conn: Any) -> None:
        self._conn, self._set = conn, False

    def is_set(self) -> bool:
        self._set = self._set or self._conn.poll()  # a message, or the end of the pipe
        return self._set


def run(fn: Callable[..., Any], request: Any, progress: Callable[[float, str], None], cancel: Cancel) -> Any:
    """`fn(request, progress, cancel)` in a child; blocks this (worker) thread until it ends.

    Progress is relayed as it comes; the result, or the child's exception, is returned or raised here.
    """
    receiver, sender = _CTX.Pipe(duplex=False)
    child = _CTX.Process(target=_child, args=(fn, request, sender, cancel.theirs), daemon=True,
                         name=f"render-{getattr(request, 'job_id', '')}")
    child.start()
    sender.close()  # the child has its own ends now: EOF here means the child is gone
    cancel.theirs.close()
    try:
        while True:
            try:
                kind, *rest = receiver.recv()
            except EOFError:
                child.join(5)
                raise RenderError(f"the render process ended without a result (exit code {child.exitcode})")
            if kind == "progress":
                progress(*rest)
            elif kind == "error":
                raise rest[0]
            else:
                return rest[0]
    finally:
        receiver.close()
        child.join(10)
        if child.is_alive():  # it ignored the cancel: it must not go on writing into the job's folder
            child.kill()
            child.join()
        cancel.close()


def _child(fn: Callable[..., Any], request: Any, sender: Any, cancelled: Any) -> None:
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(NICE)
    lock = threading.Lock()  # the speech thread and the frame loop may both report

    def progress(percent: float, message: str) -> None:
        with lock:
            sender.send(("progress", percent, message))

    try:
        result = fn(request, progress, _Seen(cancelled))
    except BaseException as exc:
        sender.send(("error", _picklable(exc)))
    else:
        sender.send(("done", result))
    finally:
        sender.close()


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RenderError(f"{type(exc).__name__}: {exc}")
    return exc


def _die_with_parent() -> None:
    """Linux: the child is killed when the process that forked it goes (the forkserver, which goes
    with the daemon), as a render thread would be: a killed daemon leaves no render writing on."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

"""Judge side of the sandbox: spawn a worker, call it with a timeout,
restart it when it dies, and turn its failures into exceptions the
collector maps to statuses.

Tests talk to student code only through `StudentModule` / `RemoteObject`
proxies from this module.
"""

from __future__ import annotations

import os
import secrets
import select
import sys
import threading
import time
from collections import deque

from grader import counterexample as calls
from grader.outcomes import (  # re-exported for tests and procedures
    StudentAbort,
    StudentCrashed,
    StudentError,
    StudentForbidden,
    StudentLoadError,
    StudentNotImplemented,
    StudentTimeout,
)
from grader.results import Status
from grader.sandbox import isolation, protocol, spawn
from grader.sandbox.protocol import Handle

DEFAULT_CALL_TIMEOUT = float(os.environ.get("ATTN_GRADE_CALL_TIMEOUT", "10"))
DEFAULT_LOAD_TIMEOUT = float(os.environ.get("ATTN_GRADE_LOAD_TIMEOUT", "20"))
START_TIMEOUT = 180.0
DEFAULT_MEMORY_CAP = int(float(os.environ.get("ATTN_GRADE_MEMORY_GIB", "6")) * 2**30)
OUTPUT_KEEP = 8 * 1024
# Caps on the text a worker sends with a failure: it is student-controlled.
MAX_WORKER_MESSAGE = 2000
MAX_WORKER_TRACEBACK = 4000
MAX_WORKER_NAME = 200


# ------------------------------------------------------------------ outcomes
# A worker's failure reply names a `Status`; these stop the test at once
# (anything else is an exception a student's code raised: StudentError).
_STATUS_TO_ABORT = {
    Status.NOT_IMPLEMENTED: StudentNotImplemented,
    Status.FORBIDDEN: StudentForbidden,
    Status.CRASHED: StudentCrashed,
}
_WORKER_STATUSES = (Status.ERROR, *_STATUS_TO_ABORT)


# ------------------------------------------------------------------ output
class OutputTail:
    """Drain a pipe on a thread, keeping only the last OUTPUT_KEEP bytes, so
    a submission printing megabytes neither blocks nor floods the judge."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.chunks: deque[bytes] = deque()
        self.kept = 0
        self.total = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self.lock:
                self.total += len(chunk)
                self.chunks.append(chunk)
                self.kept += len(chunk)
                while self.kept - len(self.chunks[0]) >= OUTPUT_KEEP:
                    self.kept -= len(self.chunks.popleft())
        try:
            os.close(self.fd)
        except OSError:
            pass

    def text(self) -> str:
        with self.lock:
            data = b"".join(self.chunks)[-OUTPUT_KEEP:]
            total = self.total
        text = data.decode("utf-8", "replace")
        if total > len(data):
            text = f"[... {total - len(data)} earlier bytes of output dropped ...]\n" + text
        return text


# ------------------------------------------------------------------ worker
class WorkerClient:
    """One worker process (restarted on demand) for one exercise."""

    def __init__(self, staging: str | os.PathLike, modules: list[str], *,
                 forbidden: tuple[str, ...] = (), forbidden_scope: tuple[str, ...] = (),
                 device: str = "cpu", memory_cap: int | None = DEFAULT_MEMORY_CAP,
                 call_timeout: float = DEFAULT_CALL_TIMEOUT,
                 load_timeout: float = DEFAULT_LOAD_TIMEOUT,
                 python: str = sys.executable) -> None:
        self.staging = str(staging)
        self.modules = list(modules)
        self.forbidden = tuple(forbidden)
        self.forbidden_scope = tuple(forbidden_scope)
        self.device = device
        self.memory_cap = memory_cap
        self.call_timeout = call_timeout
        self.load_timeout = load_timeout
        self.python = python
        self.generation = 0
        self.proc: spawn.Spawned | None = None
        self.req_fd = self.resp_fd = -1
        self.output: OutputTail | None = None
        self.outputs: list[str] = []
        self.ready = False
        self.loaded = False
        self.poisoned: dict[str, StudentAbort] = {}
        self.restarts = 0
        self.load_names: list[str] | None = None
        self.load_failure: BaseException | None = None
        self.init_id = 0
        self.sandbox: isolation.SandboxInfo | None = None   # what the last worker reached at `init`

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Spawn the worker without waiting for it (torch imports meanwhile)."""
        if self.proc is not None:
            return
        self.generation += 1
        spawned = spawn.take(self.python)
        self.proc = spawned
        self.req_fd, self.resp_fd = spawned.req_fd, spawned.resp_fd
        out_r = spawned.out_fd
        self.output = OutputTail(out_r)
        self.ready = False
        self.loaded = False
        self.init_id = _request_id()
        init = {"op": "init", "id": self.init_id, "staging": self.staging,
                "generation": self.generation,
                "forbidden": list(self.forbidden), "forbidden_scope": list(self.forbidden_scope),
                "memory_cap": self.memory_cap, "device": self.device,
                "sandbox": isolation.worker_request()}
        protocol.write_frame(self.req_fd, init, [])  # a fresh pipe: a small frame never blocks

    def ensure_ready(self) -> None:
        if self.proc is None:
            self.start()
        if not self.ready:
            reply, _ = self._receive(START_TIMEOUT, "starting the worker", self.init_id, harness=True)
            if not reply.get("ok"):  # isolation could not be set up: no student code runs
                self._died()
                raise StudentCrashed(f"the worker did not start: {reply.get('message', '')}")
            reached = isolation.SandboxInfo.from_dict((reply.get("value") or {}).get("sandbox") or {})
            self.sandbox = isolation.weakest([self.sandbox, reached])
            self.ready = True

    def load(self) -> list[str]:
        """Import the submission's modules; raises the student's failure."""
        if self.load_failure is not None:
            raise self.load_failure
        self.ensure_ready()
        if not self.loaded:
            try:
                value = self._round_trip({"op": "load", "modules": self.modules}, [],
                                         self.load_timeout, "import")
            except StudentError as exc:
                # An import that failed once fails the same way again: keep it.
                self.load_failure = StudentLoadError(
                    f"importing the file failed: {exc}", traceback=exc.traceback, where=exc.where)
                raise self.load_failure from None
            except StudentAbort as exc:
                self.load_failure = exc
                raise
            self.loaded = True
            self.load_names = sorted({n for names in value.values() for n in names})
        return self.load_names or []

    def close(self) -> None:
        if self.proc is None:
            return
        self._kill()
        self.proc = None

    def _kill(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()  # the whole process group, and our ends of its pipes
        if self.output is not None:
            self.output.thread.join(timeout=1)
            self.outputs.append(self.output.text())
            self.output = None

    def _died(self) -> None:
        """Forget a dead or killed worker; the next request starts a new one."""
        self._kill()
        self.proc = None
        self.ready = False
        self.loaded = False
        self.restarts += 1

    def output_text(self) -> str:
        parts = list(self.outputs)
        if self.output is not None:
            parts.append(self.output.text())
        text = "".join(p for p in parts if p)
        if len(text) <= OUTPUT_KEEP:
            return text
        # Keep saying that output was dropped (each part's own note may be cut off here).
        return "[... earlier output dropped ...]\n" + text[-OUTPUT_KEEP:]

    # ------------------------------------------------------------ requests
    def request(self, message: dict, buffers: list[bytes], *, timeout: float | None = None,
                label: str = "") -> object:
        """Send one request to a loaded worker; returns the decoded value."""
        if label in self.poisoned:
            earlier = self.poisoned[label]
            raise type(earlier)(f"{earlier.message} (not run again: it failed this way earlier)",
                                traceback=earlier.traceback, where=earlier.where, label=label)
        self.load()
        try:
            return self._round_trip(message, buffers, timeout or self.call_timeout, label)
        except (StudentTimeout, StudentCrashed) as exc:
            if label:
                self.poisoned[label] = exc
            raise

    def reset(self, seed: int) -> None:
        self._round_trip({"op": "reset", "seed": seed}, [], self.call_timeout, "reset", harness=True)

    def _round_trip(self, message: dict, buffers: list[bytes], timeout: float, label: str,
                    harness: bool = False):
        if self.proc is None or not self.ready:
            self.ensure_ready()
        request_id = _request_id()
        message = dict(message, id=request_id)
        try:
            protocol.write_frame(self.req_fd, message, buffers, deadline=time.monotonic() + timeout)
        except protocol.FrameTimeout:
            self._died()
            raise StudentTimeout(f"the worker stopped reading requests before `{label}`",
                                 label=label) from None
        except (BrokenPipeError, OSError):
            reason = self._death_reason()
            self._died()
            raise StudentCrashed(f"the worker died before `{label}` ({reason})", label=label) from None
        reply, out = self._receive(timeout, label, request_id, harness=harness)
        return self._value(reply, out, label)

    def _receive(self, timeout: float, label: str, request_id: int, harness: bool = False):
        """The reply to request `request_id`, whole, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(timeout, label, harness)
            readable, _, _ = select.select([self.resp_fd], [], [], min(remaining, 0.25))
            if readable:
                break
            if self.proc is not None and not self.proc.alive():
                break
            if self._over_memory():
                self._died()
                raise StudentCrashed(f"`{label}` used more than {self.memory_cap / 2**30:.1f} GiB "
                                     "of memory and was stopped", label=label)
        try:
            reply, out = protocol.read_frame(self.resp_fd, deadline=deadline)
        except protocol.FrameTimeout:
            raise self._timed_out(timeout, label, harness) from None
        except (EOFError, OSError):
            reason = self._death_reason()
            self._died()
            raise StudentCrashed(f"the worker died during `{label}` ({reason})", label=label) from None
        except protocol.FrameTooLarge as exc:
            self._died()
            raise StudentCrashed(f"reply too large: the worker's answer to `{label}` announced {exc}; "
                                 "it was refused unread", label=label) from None
        except protocol.ProtocolError as exc:
            self._died()
            raise StudentCrashed(f"the worker sent garbage during `{label}` ({exc})", label=label) from None
        if reply.get("id") != request_id or isinstance(reply.get("id"), bool):
            # Not the answer to what was asked: written by the submission, or
            # left over from an earlier request.  Never used as a result.
            self._died()
            raise StudentCrashed(f"the worker's reply to `{label}` does not match the request "
                                 "(a reply written by the submission, or out of order); it was "
                                 "not used", label=label)
        return reply, out

    def _timed_out(self, timeout: float, label: str, harness: bool) -> StudentAbort:
        """Stop the worker; the abort to raise for a reply not there in time."""
        self._died()
        if harness and label == "starting the worker":
            return StudentCrashed(f"the worker did not start within {timeout:.0f} s")
        return StudentTimeout(f"`{label}` did not finish within {timeout:g} s "
                              "(an infinite loop, or far too slow)", label=label)

    def _over_memory(self) -> bool:
        if not self.memory_cap or self.proc is None:
            return False
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return False
        return resident > self.memory_cap

    def _death_reason(self) -> str:
        if self.proc is None:
            return "not running"
        return spawn.exit_reason(self.proc.wait_status(timeout=2.0))

    def _value(self, reply: dict, out: list[bytes], label: str):
        if reply.get("ok"):
            try:
                value = protocol.decode(reply.get("value"), out)
            except (protocol.ProtocolError, KeyError, IndexError, ValueError, TypeError) as exc:
                raise StudentCrashed(f"the worker sent an unreadable answer ({exc})", label=label) from None
            return _wrap_handles(value, self)
        status = next((s for s in _WORKER_STATUSES if s.value == reply.get("kind", "error")), None)
        if status is None:  # a worker never decides passed, failed or timeout
            raise StudentCrashed("the worker sent a reply of no known kind: it was not used",
                                 label=label)
        message = _capped(reply.get("message", ""), MAX_WORKER_MESSAGE)
        tb = _capped(reply.get("traceback", ""), MAX_WORKER_TRACEBACK, keep_end=True)
        where = _location(reply.get("where"))
        if reply.get("reason") == "memory":
            message = f"ran out of memory: {message}"
        abort = _STATUS_TO_ABORT.get(status)
        if abort is not None:
            raise abort(message, traceback=tb, where=where, label=label)
        type_name = reply.get("type", "")
        if not (isinstance(type_name, str) and type_name.isidentifier() and len(type_name) <= 100):
            type_name = ""
        raise StudentError(message, type_name=type_name, traceback=tb, where=where, label=label)


def _request_id() -> int:
    """Unpredictable, so code in the worker cannot forge the answer to a
    request it has not seen (a JSON-safe integer)."""
    return secrets.randbits(52) + 1


def _capped(value, limit: int, *, keep_end: bool = False) -> str:
    """Student-controlled text from the worker, as a string of bounded size."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    if keep_end:
        return "[...]\n" + text[-limit:]
    return text[:limit] + " [...]"


def _location(value):
    """The worker's `where`: [file name, line] or None."""
    if (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool)):
        return [value[0][:MAX_WORKER_NAME], value[1]]
    return None


# ------------------------------------------------------------------ proxies
def _wrap_handles(value, client: WorkerClient):
    if isinstance(value, Handle):
        return RemoteObject(client, value)
    if isinstance(value, tuple):
        return tuple(_wrap_handles(v, client) for v in value)
    if isinstance(value, list):
        return [_wrap_handles(v, client) for v in value]
    if isinstance(value, dict):
        return {k: _wrap_handles(v, client) for k, v in value.items()}
    return value


def _encode_args(args, kwargs):
    buffers: list[bytes] = []
    enc_args = protocol.encode(list(_unwrap(a) for a in args), buffers)
    enc_kwargs = protocol.encode({k: _unwrap(v) for k, v in kwargs.items()}, buffers)
    return enc_args, enc_kwargs, buffers


def _unwrap(value):
    if isinstance(value, RemoteObject):
        return value.handle
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


class _Target:
    def __init__(self, client: WorkerClient, spec: dict, label: str) -> None:
        self._client = client
        self._spec = spec
        self._label = label

    def _call(self, path: str, args, kwargs, timeout: float | None = None):
        enc_args, enc_kwargs, buffers = _encode_args(args, kwargs)
        spec = dict(self._spec, path=".".join(filter(None, [self._spec.get("path", ""), path])))
        label = ".".join(filter(None, [self._label, path]))
        result = self._client.request({"op": "call", "target": spec, "args": enc_args, "kwargs": enc_kwargs},
                                      buffers, timeout=timeout, label=label)
        calls.LOG.record_call(self._spec, path, self if isinstance(self, RemoteObject) else None,
                              args, kwargs, result)   # for the failure's counterexample and repro
        return result

    def _get(self, path: str):
        spec = dict(self._spec, path=".".join(filter(None, [self._spec.get("path", ""), path])))
        label = ".".join(filter(None, [self._label, path]))
        return self._client.request({"op": "get", "target": spec}, [], label=label)


class RemoteCallable(_Target):
    """A function or class of the submission: calling it runs it in the worker."""

    def __call__(self, *args, **kwargs):
        return self._call("", args, kwargs)

    def with_timeout(self, seconds: float):
        return lambda *a, **kw: self._call("", a, kw, timeout=seconds)


class StudentModule:
    """`student.scaled_dot_product_attention(q, k, v)` runs in the worker."""

    def __repr__(self) -> str:
        return f"<student module {self._module}>"

    def __init__(self, client: WorkerClient, module: str) -> None:
        self._client = client
        self._module = module

    def __getattr__(self, name: str) -> RemoteCallable:
        if name.startswith("_"):  # pretty-printers probe _repr_pretty_ and friends
            raise AttributeError(name)
        return RemoteCallable(self._client, {"module": self._module, "path": name}, name)

    def names(self) -> list[str]:
        return self._client.load()

    def has(self, name: str) -> bool:
        return name in self._client.load()


class RemoteObject(_Target):
    """An object living in the worker (a module instance, an optimizer...)."""

    def __init__(self, client: WorkerClient, handle: Handle) -> None:
        enc = protocol.encode(handle, [])
        super().__init__(client, {"handle": enc}, handle.type)
        self.handle = handle

    @property
    def type_name(self) -> str:
        return self.handle.type

    def __call__(self, *args, **kwargs):
        return self._call("", args, kwargs)

    def call(self, method: str, *args, timeout: float | None = None, **kwargs):
        return self._call(method, args, kwargs, timeout=timeout)

    def get(self, path: str):
        return self._get(path)

    def same(self, path_a: str, path_b: str) -> bool:
        a = dict(self._spec, path=path_a)
        b = dict(self._spec, path=path_b)
        return bool(self._client.request({"op": "same", "a": a, "b": b}, [],
                                         label=f"{self._label}.{path_a}"))

    def __repr__(self) -> str:
        return f"<student {self.handle.type} #{self.handle.id}>"


def run_procedure(client: WorkerClient, name: str, *args, timeout: float | None = None, **kwargs):
    """Run a trusted procedure of grader/procedures/ inside the worker."""
    enc_args, enc_kwargs, buffers = _encode_args(args, kwargs)
    result = client.request({"op": "proc", "name": name, "args": enc_args, "kwargs": enc_kwargs},
                            buffers, timeout=timeout, label=name)
    if name == "heads:build" and isinstance(result, tuple) and result:
        target, init_args, init_kwargs = (list(args) + [(), None])[:3]
        calls.LOG.record_build(target, init_args, init_kwargs, kwargs.get("state"), kwargs.get("dtype"),
                               result[0])
    elif name == "contract:build" and isinstance(result, tuple) and result:
        target, init_args, init_kwargs, values = (list(args) + [(), None, None])[:4]
        calls.LOG.record_build(target, init_args, init_kwargs, values, kwargs.get("dtype"), result[0],
                               strict=False)
    return result

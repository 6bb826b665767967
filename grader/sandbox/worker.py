"""The worker: the only process that imports student code.

It answers the judge's requests over two pipes (see protocol.py), keeps
objects the judge cannot receive in a handle table, and reports exceptions
as data.  It never decides a score.

Requests (`op`):
  init    staging dir, modules, forbidden built-ins, memory cap -> ready
  load    import the submission's modules
  reset   put global state back and seed the RNGs
  call    call a target (module attribute or handle attribute) with args
  get     fetch a target's value (tensor, number...) or a handle to it
  same    whether two targets are the very same object
  proc    run a trusted worker-side procedure from grader.procedures
  release forget handles
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import signal
import sys
import traceback

import torch

from grader.results import Status
from grader.sandbox import guards, isolation, linux, protocol
from grader.sandbox.protocol import Handle

MAX_TRACEBACK_FRAMES = 8
PROCEDURES_PACKAGE = "grader.procedures"


class Worker:
    def __init__(self, req_fd: int, resp_fd: int) -> None:
        self.req_fd = req_fd
        self.resp_fd = resp_fd
        self.tripwires = guards.Tripwires()
        self.state = guards.GlobalState()
        self.staging = ""
        self.generation = 0
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}
        self.next_id = 1
        self.modules: dict[str, object] = {}
        self.scope: tuple[str, ...] = ()

    # ------------------------------------------------------------ handles
    def handle_of(self, obj) -> Handle:
        key = id(obj)
        hid = self.ids.get(key)
        if hid is None or self.objects.get(hid) is not obj:
            hid = self.next_id
            self.next_id += 1
            self.objects[hid] = obj
            self.ids[key] = hid
        return Handle(hid, type(obj).__name__, self.generation)

    def resolve(self, handle: Handle):
        if handle.generation != self.generation or handle.id not in self.objects:
            raise LookupError("this object belongs to an earlier worker (it was restarted)")
        return self.objects[handle.id]

    # ------------------------------------------------------------ loop
    def serve(self) -> None:
        while True:
            try:
                request, buffers = protocol.read_frame(self.req_fd)
            except EOFError:
                return
            try:
                reply, out = self.dispatch(request, buffers)
            except BaseException as exc:  # noqa: BLE001 - everything becomes data
                reply, out = self.failure(exc), []
            if self.tripwires.tripped:
                reply = {"ok": False, "kind": Status.FORBIDDEN.value,
                         "message": f"calls {self.tripwires.tripped}, which this exercise "
                                    "asks you to write yourself",
                         "type": "ForbiddenCall", "traceback": reply.get("traceback", "")}
                out = []
            reply["id"] = request.get("id")  # the judge accepts only the answer to its request
            try:
                protocol.write_frame(self.resp_fd, reply, out)
            except TypeError as exc:
                protocol.write_frame(self.resp_fd, {"ok": False, "kind": Status.ERROR.value, "type": "TypeError",
                                                    "message": str(exc), "traceback": "",
                                                    "id": request.get("id")}, [])

    def dispatch(self, request: dict, buffers: list[bytes]):
        op = request.get("op")
        decode = lambda data: protocol.decode(data, buffers, resolve_handle=self.resolve)  # noqa: E731
        if op == "init":
            return self.op_init(request), []
        if op == "reset":
            self.tripwires.tripped = None
            self.state.reset(int(request.get("seed", 0)))
            return {"ok": True, "value": None}, []
        if op == "release":
            for hid in request.get("ids", []):
                obj = self.objects.pop(int(hid), None)
                if obj is not None:
                    self.ids.pop(id(obj), None)
            return {"ok": True, "value": None}, []

        self.tripwires.tripped = None
        with self.student_code():
            if op == "load":
                value = self.op_load(request.get("modules", []))
            elif op == "call":
                target = self.target(request["target"])
                args = decode(request.get("args", []))
                kwargs = decode(request.get("kwargs", {"__dict__": []}))
                self.check_signature(target, args, kwargs, request["target"])
                value = target(*args, **kwargs)
            elif op == "get":
                value = self.target(request["target"])
            elif op == "same":
                value = self.target(request["a"]) is self.target(request["b"])
            elif op == "proc":
                value = self.op_proc(request["name"], decode(request.get("args", [])),
                                     decode(request.get("kwargs", {"__dict__": []})))
            else:
                raise protocol.ProtocolError(f"unknown op {op!r}")
        out: list[bytes] = []
        encoded = protocol.encode(value, out, handle_of=self.handle_of)
        return {"ok": True, "value": encoded}, out

    def student_code(self):
        worker = self

        class _Armed:
            def __enter__(self):
                if not worker.scope:
                    worker.tripwires.armed = True

            def __exit__(self, *exc):
                worker.tripwires.armed = False
                return False

        return _Armed()

    # ------------------------------------------------------------ ops
    def op_init(self, request: dict) -> dict:
        in_use = _address_space_in_use()
        # Isolation first (isolation.py): a scratch folder, a uid, namespaces.
        try:
            sandbox, scratch = isolation.enter(request.get("sandbox"), os.path.realpath(request["staging"]),
                                               keep_fds=(self.req_fd, self.resp_fd))
        except isolation.SandboxSetupError as exc:
            protocol.write_frame(self.resp_fd, {"ok": False, "kind": "crashed", "type": "SandboxSetupError",
                                                "message": str(exc), "traceback": ""}, [])
            os._exit(3)
        self.staging = scratch
        self.generation = int(request.get("generation", 0))
        self.scope = tuple(request.get("forbidden_scope", ()))
        self.tripwires.install(request.get("forbidden", ()))
        sys.path.insert(0, self.staging)
        os.chdir(self.staging)
        cap = request.get("memory_cap")
        if cap and request.get("device", "cpu") == "cpu":
            guards.limit_resources(int(cap) + in_use)
        else:
            guards.limit_resources(None)
        # Hidden tests use tiny tensors: one thread is several times faster
        # than a contended pool (procedures that train may raise it).
        torch.set_num_threads(int(request.get("threads") or 1))
        self.state = guards.GlobalState()
        return {"ok": True, "value": {"pid": os.getpid(), "torch": torch.__version__,
                                       "python": sys.version.split()[0], "sandbox": sandbox.to_dict()}}

    def op_load(self, names: list[str]):
        loaded = {}
        for name in names:
            module = importlib.import_module(name)
            for func in self.scope:
                if callable(getattr(module, func, None)):
                    setattr(module, func, self.tripwires.scope(getattr(module, func)))
            self.modules[name] = module
            loaded[name] = sorted(n for n in vars(module) if not n.startswith("_"))
        return loaded

    def op_proc(self, name: str, args, kwargs):
        module_name, _, func_name = name.partition(":")
        if not module_name.isidentifier() or not func_name.isidentifier():
            raise protocol.ProtocolError(f"bad procedure name {name!r}")
        module = importlib.import_module(f"{PROCEDURES_PACKAGE}.{module_name}")
        procedure = getattr(module, func_name)
        return procedure(self, *args, **kwargs)

    def module(self, name: str):
        if name not in self.modules:
            self.modules[name] = importlib.import_module(name)
        return self.modules[name]

    def target(self, spec: dict):
        if "handle" in spec:
            decoded = protocol.decode(spec["handle"], [], resolve_handle=self.resolve)
            obj = decoded
        else:
            obj = self.module(spec["module"])
        for part in filter(None, str(spec.get("path", "")).split(".")):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                if inspect.ismodule(obj):
                    raise MissingName(f"{obj.__name__}.py defines no `{part}` "
                                      "(the exercise contract asks for it)") from None
                raise
        return obj

    def check_signature(self, target, args, kwargs, spec: dict) -> None:
        """A wrong signature gets a one-line explanation, not a deep TypeError."""
        func = target.forward if isinstance(target, torch.nn.Module) else target
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            name = spec.get("path") or type(target).__name__
            raise SignatureMismatch(
                f"{name}{signature} cannot be called the way the contract calls it ({exc})"
            ) from None

    # ------------------------------------------------------------ errors
    def failure(self, exc: BaseException) -> dict:
        status, reason = classify(exc, self.tripwires)
        return {
            "ok": False,
            "kind": status.value,
            "reason": reason,
            "type": type(exc).__name__,
            "message": _message(exc, reason),
            "traceback": self.student_traceback(exc),
            "where": self.student_location(exc),
        }

    def student_frames(self, exc: BaseException):
        frames = traceback.extract_tb(exc.__traceback__)
        prefix = self.staging + os.sep
        return [f for f in frames if self.staging and os.path.realpath(f.filename).startswith(prefix)]

    def student_traceback(self, exc: BaseException) -> str:
        frames = self.student_frames(exc)[-MAX_TRACEBACK_FRAMES:]
        lines = []
        for f in frames:
            rel = os.path.relpath(os.path.realpath(f.filename), self.staging)
            lines.append(f'  File "{rel}", line {f.lineno}, in {f.name}')
            if f.line:
                lines.append(f"    {f.line.strip()}")
        if isinstance(exc, SyntaxError) and exc.filename:
            rel = os.path.relpath(os.path.realpath(exc.filename), self.staging)
            lines.append(f'  File "{rel}", line {exc.lineno}')
            if exc.text:
                lines.append(f"    {exc.text.strip()}")
        lines.append(f"{type(exc).__name__}: {_message(exc, '')}")
        return "\n".join(lines)

    def student_location(self, exc: BaseException):
        if isinstance(exc, SyntaxError) and exc.filename:
            return [os.path.relpath(os.path.realpath(exc.filename), self.staging), exc.lineno]
        frames = self.student_frames(exc)
        if not frames:
            return None
        f = frames[-1]
        return [os.path.relpath(os.path.realpath(f.filename), self.staging), f.lineno]


class SignatureMismatch(TypeError):
    pass


class MissingName(AttributeError):
    pass


def classify(exc: BaseException, tripwires: guards.Tripwires) -> tuple[Status, str]:
    """The status a failure stands for, and for a crash its reason
    ("memory", "exit", "protocol")."""
    if isinstance(exc, guards.ForbiddenCall) or tripwires.tripped:
        return Status.FORBIDDEN, ""
    if isinstance(exc, NotImplementedError):
        return Status.NOT_IMPLEMENTED, ""
    if isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and any(s in str(exc) for s in ("can't allocate memory", "out of memory", "DefaultCPUAllocator"))
    ):
        return Status.CRASHED, "memory"
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        return Status.CRASHED, "exit"
    if isinstance(exc, protocol.ProtocolError):
        return Status.CRASHED, "protocol"
    return Status.ERROR, ""


def _message(exc: BaseException, reason: str) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0] if reason == "memory" else text
    return first[:2000]


def _address_space_in_use() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--req-fd", type=int, required=True)
    parser.add_argument("--resp-fd", type=int, required=True)
    args = parser.parse_args()
    sys.dont_write_bytecode = True
    isolation.preimport_worker_modules()
    planned = isolation.detect_level()
    if planned.level == isolation.STRICT:
        _supervise_namespaced_worker(args.req_fd, args.resp_fd, planned)
    else:
        isolation.plan_this_process(planned)
    Worker(args.req_fd, args.resp_fd).serve()


def _supervise_namespaced_worker(req_fd: int, resp_fd: int, planned) -> None:
    """A worker started without the zygote: fork it into new namespaces (it
    returns here), wait for it, and leave the way it did."""
    linux.become_subreaper()
    try:
        pid = isolation.fork_worker(planned)
    except OSError:
        return  # serve here, at the level `init` finds
    if pid == 0:
        return
    os.close(req_fd)
    os.close(resp_fd)
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if done == pid:
            break
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


if __name__ == "__main__":
    main()

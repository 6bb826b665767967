"""The zygote: imports torch once, then forks a fresh worker per request.

A new worker process costs a full `import torch` (2-3 s on the 2-core
machine); a fork of this already-initialised process costs milliseconds.
The zygote never runs a torch operation, so no thread pool exists when it
forks, and each child starts from the same clean state: torch imported,
no student code, no tripwires, default global settings.

Control protocol over a Unix socket (the judge side lives in spawn.py):
    judge -> "spawn" + three fds (request read end, reply write end, output)
    zygote -> "pid <n>"
    judge -> "status <n>"   zygote -> "status <n> <wait status or 'running'>"

Isolation (isolation.py): the zygote detects the sandbox level when it
starts and forks each worker with `isolation.fork_worker` (into new
namespaces for `strict`).  It is a subreaper: whatever a worker's code
leaves running (a double fork + setsid) is adopted by the zygote when its
parent dies, and killed when a worker exits and when the judge goes away.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from grader.sandbox import isolation, linux


def _child(req_fd: int, resp_fd: int, out_fd: int, control: socket.socket) -> None:
    control.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.setsid()
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    code = 0
    try:
        from grader.sandbox.worker import Worker

        Worker(req_fd, resp_fd).serve()
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    sys.dont_write_bytecode = True
    # No parent-death signal here: it would follow the judge *thread* that
    # started us.  The judge going away closes `control`, and we finish().
    detected = isolation.start_detection()  # a probe runs while we import torch
    subreaper = linux.become_subreaper()
    import torch  # the whole point: pay for it once
    import grader.sandbox.worker  # noqa: F401

    planned = detected()
    if planned.level == isolation.STRICT:   # its workers will not see the grader's files
        isolation.preimport_worker_modules()

    if "--warm" in sys.argv[2:]:
        # The first meta-device op (and the first optimizer step) imports
        # torch's compiler stack, torch._dynamo and sympy (~2 s); doing it here
        # spares every forked worker. Starts no threads.
        _ = torch.ones(2, 2, device="meta").triu(1) + 1
        import torch._dynamo  # noqa: F401

    statuses: dict[int, int] = {}
    workers: set[int] = set()   # running workers; any other child is a stray

    def reap(*_):
        reaped = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            reaped = True
            workers.discard(pid)
            statuses[pid] = status
            if len(statuses) > 4096:
                statuses.pop(next(iter(statuses)))
        if reaped and subreaper:
            linux.kill_strays(workers)

    def finish():
        """The judge went away: end every worker and all they left running."""
        if subreaper:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            linux.kill_strays(set())
            while True:  # what the dying leave behind is adopted by us: end it too
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                linux.kill_strays(set())
        os._exit(0)

    signal.signal(signal.SIGCHLD, reap)
    control.sendall(b"ready\n")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1024, 3)
        except InterruptedError:
            continue
        except OSError:
            finish()
        if not message:
            finish()  # the judge went away
        text = message.decode().strip()
        if text == "spawn" and len(fds) == 3:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # until the worker is known
            try:
                pid = isolation.fork_worker(planned)
            except OSError:
                pid = -1
            if pid == 0:
                _child(fds[0], fds[1], fds[2], control)
            if pid > 0:
                workers.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
            for fd in fds:
                os.close(fd)
            control.sendall(f"pid {pid}\n".encode() if pid > 0 else b"error\n")
        elif text.startswith("status "):
            for fd in fds:
                os.close(fd)
            pid = int(text.split()[1])
            reap()
            status = statuses.get(pid)
            control.sendall(f"status {pid} {'running' if status is None else status}\n".encode())
        else:
            for fd in fds:
                os.close(fd)
            control.sendall(b"error\n")


if __name__ == "__main__":
    main()

"""Operating-system isolation of the worker: which level this machine
reaches, and setting it up in a freshly forked worker.

Levels, weakest first (docs/security.md says what each defends):

- ``process``: the worker is a separate process of the judge's user (macOS,
  Windows, Linux without root or user namespaces).
- ``uid``: Linux as root without namespaces (a Docker default profile): the
  worker drops to an unprivileged uid and works in a scratch folder it owns;
  the judge's folders are mode 0700.
- ``strict``: Linux as root, or with unprivileged user namespaces: new user
  (when not root), PID, mount, network and IPC namespaces; an unprivileged
  uid; a read-only filesystem in which the grader package, the temporary
  folders and the judge's home are hidden, except a private scratch tmpfs
  holding the staged submission; no network; no capabilities.

At every level the worker gets a minimal environment (an allowlist), keeps
no file descriptor but its pipes, and dies with the zygote; the zygote
adopts and kills whatever the student's code left running (see zygote.py).
Where libseccomp is installed, `strict` and `uid` also load a system-call
filter (linux.py).

Who does what: the zygote calls `detect_level()` (cached, a forked probe of
a few ms, while the judge imports its own modules) and forks each worker
with `fork_worker()`, into new namespaces for `strict`; the judge sends
`worker_request()` (what to hide) in each worker's `init`, and the worker
finishes the set-up in `enter()`, before any student code is imported, and
reports the level it reached.  `detect_level()` in the judge serves
`attn-grade doctor` and `require_isolation()`.  A machine that refuses a step
gets a weaker level and one line saying why, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import shutil
import site
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.sandbox import linux

GRADER_DIR = str(Path(__file__).resolve().parents[1])   # the installed grader package
PROCESS, UID, STRICT = "process", "uid", "strict"
LEVELS = (PROCESS, UID, STRICT)            # weakest first
SANDBOX_UID = SANDBOX_GID = 65534          # "nobody"
SCRATCH_SIZE = "512m"
FORCE_ENV = "ATTN_GRADE_SANDBOX"           # cap the level (e.g. "uid" to test that level)

# Kept from the judge's environment (plus LC_*); HOME and TMPDIR point at the scratch folder.
ENV_ALLOWLIST = frozenset({
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "NO_COLOR",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "TORCH_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUBLAS_WORKSPACE_CONFIG",
    "PYTORCH_CUDA_ALLOC_CONF", "LD_LIBRARY_PATH",
})

# Imported lazily inside the worker: imported before its filesystem hides the grader.
WORKER_PACKAGES = ("grader.procedures", "grader.training", "grader.reference")


# ---------------------------------------------------------------------- the result
@dataclass(frozen=True)
class SandboxInfo:
    """What isolation a worker runs under (one of these goes into every report)."""

    level: str
    network: bool                # whether student code can reach any network
    uid: int | None              # the worker's uid (inside its namespace), None if unknown
    filesystem: str              # in words
    reasons: tuple[str, ...] = field(default=())   # why not stricter
    seccomp: bool = False        # a system-call filter is loaded (see SECCOMP_DENIED)

    def to_dict(self) -> dict:
        return {"level": self.level, "network": self.network, "uid": self.uid,
                "filesystem": self.filesystem, "seccomp": self.seccomp, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: dict) -> "SandboxInfo":
        level = d.get("level") if d.get("level") in LEVELS else PROCESS
        uid = d.get("uid")
        return cls(level=level, network=bool(d.get("network", True)),
                   uid=uid if isinstance(uid, int) else None,
                   filesystem=str(d.get("filesystem", "")),
                   reasons=tuple(str(r) for r in d.get("reasons", ()) or ()), seccomp=bool(d.get("seccomp")))

    def line(self) -> str:
        """One line for a scorecard."""
        uid = f" · uid {self.uid}" if self.uid is not None else ""
        text = (f"sandbox: {self.level}{uid} · {'network' if self.network else 'no network'} · {self.filesystem}"
                + (" · seccomp" if self.seccomp else ""))
        if self.level != STRICT and self.reasons:
            text += f" · not strict: {self.reasons[0]}"
        return text


def describe(sandbox: dict) -> str:
    """The scorecard line for a report's `sandbox` field ('' when it has none)."""
    return SandboxInfo.from_dict(sandbox).line() if sandbox else ""


FILESYSTEM = {
    STRICT: "read-only, private scratch",
    UID: "own scratch, judge's folders closed",
    PROCESS: "judge's user and files",
}


def info_for(level: str, reasons: tuple[str, ...] = (), uid: int | None = None,
             seccomp: bool = False) -> SandboxInfo:
    return SandboxInfo(level=level, network=level != STRICT and not seccomp,
                       uid=uid if uid is not None else (SANDBOX_UID if level != PROCESS else os_uid()),
                       filesystem=FILESYSTEM[level], reasons=tuple(reasons), seccomp=seccomp)


def os_uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def weakest(infos) -> SandboxInfo | None:
    """The weakest of several workers' levels (what a report can promise)."""
    infos = [i for i in infos if i is not None]
    if not infos:
        return None
    return min(infos, key=lambda i: (LEVELS.index(i.level), not i.network))



# ---------------------------------------------------------------------- detection
_DETECTED: SandboxInfo | None = None


def _namespace_flags(root: bool) -> int:
    flags = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWNET | linux.CLONE_NEWIPC
    return flags if root else flags | linux.CLONE_NEWUSER


def _map_user(uid: int, gid: int) -> None:
    """After unshare(linux.CLONE_NEWUSER) as a normal user: be SANDBOX_UID inside."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{SANDBOX_UID} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{SANDBOX_GID} {gid} 1")


def enter_namespaces() -> None:
    """unshare() the worker's namespaces (the next child is pid 1 of the new PID namespace)."""
    root = os.geteuid() == 0
    uid, gid = os.geteuid(), os.getegid()
    linux.unshare(_namespace_flags(root))
    if not root:
        _map_user(uid, gid)


def _start_probe(step):
    """Run `step` in a forked child; returns a function that waits for it and
    says None if it worked, else why not."""
    linux.libc()              # load libc here: the child of a threaded judge must not
    tempfile.gettempdir()     # take the loader's (or anything else's) locks
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        message = b""
        try:
            step()
        except BaseException as exc:  # noqa: BLE001
            message = (str(exc) or type(exc).__name__).encode()[:500] or b"failed"
        os.write(write_end, message or b"")
        os._exit(0 if not message else 1)
    os.close(write_end)

    def outcome() -> str | None:
        chunks = []
        while True:
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        message = b"".join(chunks).decode(errors="replace")
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return None
        return message or f"the probe died ({status})"

    return outcome


def _probe(step) -> str | None:
    return _start_probe(step)()


def _strict_probe() -> None:  # pragma: no cover - runs in a probe child
    enter_namespaces()
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    target = tempfile.gettempdir()
    linux.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m")
    linux.read_only_tree(target)
    if os.fork() == 0:  # pid 1 of the new PID namespace: a fresh /proc must mount
        try:
            linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
        except OSError:
            os._exit(1)
        os._exit(0)
    _, status = os.wait()
    if status != 0:
        raise OSError("mounting /proc in a new PID namespace was refused")


def _uid_probe() -> None:  # pragma: no cover - runs in a probe child
    needed = _needed_paths()
    os.setgroups([])
    os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
    os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    closed = [p for p in needed if not os.access(p, os.R_OK | os.X_OK)]
    if closed:  # Python under /root (pyenv...): the worker could not import the standard library
        raise OSError(f"uid {SANDBOX_UID} cannot read {closed[0]}")


def uid_level_problem() -> str | None:
    """Why the `uid` level does not work here (None: it does)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux"
    return _probe(_uid_probe)


def start_detection():
    """Start probing now and return `detect_level` to call later: the zygote
    imports torch meanwhile."""
    if _DETECTED is None and sys.platform.startswith("linux"):
        strict_probe = _start_probe(_strict_probe)
        return lambda: detect_level(strict_probe=strict_probe)
    return detect_level


def detect_level(*, refresh: bool = False, strict_probe=None) -> SandboxInfo:
    """The strongest level this machine reaches (probed once per process)."""
    global _DETECTED
    if _DETECTED is not None and not refresh and strict_probe is None:
        return _DETECTED
    reasons: list[str] = []
    level = PROCESS
    if not sys.platform.startswith("linux"):
        reasons.append(f"namespaces and uid switching need Linux (this is {sys.platform})")
    else:
        root = os.geteuid() == 0
        why = (strict_probe or _start_probe(_strict_probe))()
        if why is None:
            level = STRICT
        else:
            kind = "namespaces" if root else "unprivileged user namespaces"
            reasons.append(f"{kind} are not available ({why})")
            if root:
                why = uid_level_problem()
                if why is None:
                    level = UID
                else:
                    reasons.append(f"switching to uid {SANDBOX_UID} failed ({why})")
            else:
                reasons.append("not running as root, so the worker cannot switch to another uid")
    forced = os.environ.get(FORCE_ENV, "").strip().lower()
    if forced in LEVELS and LEVELS.index(forced) < LEVELS.index(level):
        reasons.insert(0, f"{FORCE_ENV}={forced} caps the level")
        level = forced
    _DETECTED = info_for(level, tuple(reasons), seccomp=level != PROCESS and linux.seccomp_library() is not None)
    return _DETECTED


def require_isolation(minimum: str, allow_weak: bool, info: SandboxInfo | None = None) -> SandboxInfo:
    """Refuse to grade below `minimum` (batch, verify, Gradescope) unless allowed."""
    info = info or detect_level()
    if LEVELS.index(info.level) >= LEVELS.index(minimum) or allow_weak:
        return info
    why = "; ".join(info.reasons) or "unknown"
    raise GraderError(
        f"this machine only reaches sandbox level '{info.level}', below the '{minimum}' needed to "
        f"grade other people's code safely ({why})",
        hint="run as root on Linux (or enable user namespaces), see `attn-grade doctor`; "
             "--allow-weak-isolation grades anyway")


HELP = {
    STRICT: [],
    UID: ["for `strict`: let the container create namespaces (e.g. docker run --security-opt "
          "seccomp=unconfined --security-opt apparmor=unconfined --cap-add SYS_ADMIN), or run on the host"],
    PROCESS: ["for `strict`: run as root on Linux, or enable unprivileged user namespaces "
              "(sysctl user.max_user_namespaces=15000; kernel.unprivileged_userns_clone=1 on Debian; "
              "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 24.04)",
              "for `uid`: run as root on Linux with Python readable by uid 65534"],
}


def doctor_lines(info: SandboxInfo) -> list[str]:
    """What `attn-grade doctor` prints."""
    lines = [f"sandbox level: {info.level}",
             f"  student code runs as uid {info.uid}" if info.uid is not None else "  uid: unknown",
             f"  network: {'reachable' if info.network else 'none (empty network namespace)'}",
             f"  filesystem: {info.filesystem}",
             "  environment: an allowlist (PATH, LANG, LC_*, thread counts), HOME and TMPDIR in the scratch folder",
             "  leftover processes: killed when grading ends"
             + (" (PID namespace)" if info.level == STRICT else " (adopted and killed by the zygote)")]
    if info.level == STRICT:
        lines.append("ok: strict isolation; batch, verify and Gradescope can grade other people's code here")
        return lines
    lines.append("not strict, because:")
    lines += [f"  - {reason}" for reason in info.reasons]
    lines += [f"  {hint}" for hint in HELP[info.level]]
    if LEVELS.index(info.level) < LEVELS.index(UID):
        lines.append("batch, verify and Gradescope refuse this level unless --allow-weak-isolation is given")
    return lines


# ---------------------------------------------------------------------- judge side
_HIDDEN_EXTRA: list[str] = []
# The same list for the judge processes this one starts (batch judges).
HIDE_ENV = "ATTN_GRADE_HIDE_FROM_WORKERS"


def hide_from_workers(*paths: str | os.PathLike) -> None:
    """Also hide these folders from strict workers (a class folder, a cache),
    here and in the judge processes started from here."""
    for path in paths:
        text = os.path.realpath(path)
        if text not in _HIDDEN_EXTRA:
            _HIDDEN_EXTRA.append(text)
    os.environ[HIDE_ENV] = os.pathsep.join(_HIDDEN_EXTRA)


def hidden_paths() -> list[str]:
    paths = [GRADER_DIR, tempfile.gettempdir(), "/tmp", "/var/tmp",
             os.path.expanduser("~"), *_HIDDEN_EXTRA,
             *filter(None, os.environ.get(HIDE_ENV, "").split(os.pathsep))]
    out = []
    for path in paths:
        real = os.path.realpath(path)
        if real != "/" and real not in out:
            out.append(real)
    return out


def worker_request() -> dict:
    """What a worker's `init` carries about isolation: what to hide.  The
    level is the one its zygote detected (off the judge's critical path)."""
    return {"hide": hidden_paths()}


# ---------------------------------------------------------------------- zygote side
_PLANNED: SandboxInfo | None = None   # in a worker: the level its creator detected
_IN_NAMESPACES = False                # set in a worker forked into fresh namespaces
_NAMESPACE_FAILURE = ""               # why a worker meant to be strict is not


def preimport_worker_modules() -> None:
    """Import what the worker imports lazily, while the grader's files are visible."""
    for package_name in WORKER_PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue
        for module in pkgutil.walk_packages(package.__path__, package_name + "."):
            try:
                importlib.import_module(module.name)
            except Exception:  # noqa: BLE001 - a broken module fails later, in its own test
                pass


def plan_this_process(planned: SandboxInfo) -> None:
    """A worker started as a plain subprocess, below `strict`: no fork needed
    (and no parent-death signal: it would follow the judge's *thread*)."""
    global _PLANNED
    _PLANNED = planned


def fork_worker(planned: SandboxInfo) -> int:
    """Fork a worker; returns 0 in the worker and its pid in the caller.

    For `strict`, an intermediate child enters new namespaces and forks the
    worker (pid 1 of the new PID namespace, so its death kills everything
    the student started), tells us its pid and exits: the worker is then
    adopted by the caller, a subreaper.  SIGCHLD must be blocked by the caller."""
    global _PLANNED, _IN_NAMESPACES, _NAMESPACE_FAILURE
    _PLANNED = planned    # (also set in the caller: harmless)
    if planned.level != STRICT or not sys.platform.startswith("linux"):
        pid = os.fork()
        if pid == 0:
            linux.set_parent_death_signal()
        return pid
    if os.geteuid() == 0:
        return _fork_as_root()
    adopter = os.getpid()
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        try:
            enter_namespaces()
        except OSError as exc:  # possibly half done: this process serves nobody
            os.write(write_end, f"failed {exc}".encode()[:1000])
            os._exit(0)
        gate_read, gate_write = os.pipe()
        worker = os.fork()
        if worker == 0:
            os.close(write_end)
            os.close(gate_write)
            os.read(gate_read, 1)          # EOF: the intermediate is exiting
            os.close(gate_read)
            _wait_until_adopted_by(adopter)
            linux.set_parent_death_signal()
            if linux.outer_parent() != adopter:
                os._exit(1)                # the adopter died meanwhile
            _IN_NAMESPACES = True
            return 0
        os.write(write_end, f"{worker}\n".encode())
        os.close(write_end)   # answer now: exiting a fork of the zygote takes a while
        os._exit(0)
    os.close(write_end)
    data = b""
    while True:
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    text = data.decode(errors="replace").strip()
    if text.startswith("failed "):
        # The namespaces were refused after all: a plain worker says why (see enter()).
        _NAMESPACE_FAILURE = f"new namespaces were refused ({text.removeprefix('failed ')})"
        pid = os.fork()
        if pid == 0:
            linux.set_parent_death_signal()
        return pid
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        raise OSError("the sandboxed worker did not start") from None


_OWN_PID_NAMESPACE: int | None = None


def _fork_as_root() -> int:
    """Root's shortcut (one fork instead of two): the next child of this
    process is pid 1 of a new PID namespace, then this process's children go
    back to its own namespace; the child unshares the rest itself."""
    global _OWN_PID_NAMESPACE, _IN_NAMESPACES, _NAMESPACE_FAILURE
    if _OWN_PID_NAMESPACE is None:
        _OWN_PID_NAMESPACE = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    linux.unshare(linux.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        linux.set_parent_death_signal()
        try:
            linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC)
            _IN_NAMESPACES = True
        except OSError as exc:
            _NAMESPACE_FAILURE = f"new namespaces were refused ({exc})"
        return 0
    # Must work (root, our own namespace); if not, later forks would land in
    # the worker's namespace: the caller gives up on this zygote.
    linux.setns(_OWN_PID_NAMESPACE, linux.CLONE_NEWPID)
    return pid


def _wait_until_adopted_by(adopter: int) -> None:
    for _ in range(5000):
        if linux.outer_parent() == adopter:
            return
        time.sleep(0.001)
    os._exit(1)


# ---------------------------------------------------------------------- worker side
def _keep_fds(keep: tuple[int, ...]) -> None:
    """Close every file descriptor but stdio and `keep`."""
    keep_all = sorted({0, 1, 2, *keep})
    start = 0
    for fd in keep_all:
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 1 << 16)


def minimal_environment(scratch: str) -> None:
    kept = {k: v for k, v in os.environ.items() if k in ENV_ALLOWLIST or k.startswith("LC_")}
    os.environ.clear()
    os.environ.update(kept)
    os.environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for name in ("HOME", "TMPDIR", "TMP", "TEMP"):
        os.environ[name] = scratch
    tempfile.tempdir = scratch


def _staged_files(staging: str) -> dict[str, bytes]:
    files = {}
    for folder, _, names in os.walk(staging):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, staging)] = f.read()
    return files


def _write_files(scratch: str, files: dict[str, bytes], uid: int | None) -> None:
    for rel, data in files.items():
        path = os.path.join(scratch, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    if uid is not None:
        for folder, dirs, names in os.walk(scratch):
            for name in [*dirs, *names]:
                os.chown(os.path.join(folder, name), uid, SANDBOX_GID)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _needed_paths() -> list[str]:
    """Folders the worker reads after the set-up: Python and its packages."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    torch_spec = importlib.util.find_spec("torch")   # finds it without importing it
    if torch_spec is not None and torch_spec.origin:
        candidates.append(os.path.dirname(os.path.dirname(torch_spec.origin)))
    try:
        candidates += [*site.getsitepackages(), site.getusersitepackages()]   # pip install --user
    except AttributeError:  # pragma: no cover
        pass
    candidates += [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    real = {os.path.realpath(p) for p in candidates if p and os.path.isdir(p)}
    return sorted(p for p in real if not any(_inside(p, q) and p != q for q in real))  # outermost only


def _strict_filesystem(staging: str, hide: list[str], files: dict[str, bytes]) -> None:
    root = os.geteuid() == 0
    needed = _needed_paths()
    hide = sorted({os.path.realpath(h) for h in hide if h and os.path.realpath(h) != "/"},
                  key=lambda p: p.count("/"))
    # Folders to show again inside a hidden one (a virtual environment under $HOME).
    keep = {n: os.open(n, os.O_PATH | os.O_DIRECTORY) for n in needed if any(_inside(n, h) for h in hide)}
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.read_only_tree("/")
    hidden = []
    for folder in hide:   # outer folders first; an inner one may be visible again through `keep`
        if not os.path.isdir(folder):
            continue
        linux.mount("tmpfs", folder, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m,mode=0755")
        hidden.append(folder)
        for path, fd in keep.items():
            if _inside(path, folder):
                os.makedirs(path, exist_ok=True)
                linux.mount(f"/proc/self/fd/{fd}", path, None, linux.MS_BIND | linux.MS_REC)
                linux.read_only_tree(path)
        if _inside(staging, folder):
            os.makedirs(staging, exist_ok=True)
    for fd in keep.values():
        os.close(fd)
    for folder in hidden:
        linux.read_only_tree(folder)
    # The one writable place: the scratch folder, over the staging folder's path.
    linux.mount("tmpfs", staging, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV,
           f"size={SCRATCH_SIZE},mode=0700,uid={SANDBOX_UID},gid={SANDBOX_GID}")
    _write_files(staging, files, SANDBOX_UID if root else None)
    if os.path.isdir("/dev/shm"):
        linux.mount("tmpfs", "/dev/shm", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=64m,mode=1777")
    try:
        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    except OSError:
        # No fresh /proc (a masked one, in a container): hide the judge's entirely.
        linux.mount("tmpfs", "/proc", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "size=1m")


def _drop_to_sandbox_uid() -> None:
    os.setgroups([])
    os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
    os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)


def _no_new_privileges() -> None:
    try:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    except OSError:
        pass


def enter(request: dict | None, staging: str, keep_fds: tuple[int, ...]) -> tuple[SandboxInfo, str]:
    """Finish isolating this (fresh, trusted) worker before any student code
    runs.  Returns what was reached and the scratch folder that now holds the
    submission (the staging path itself in `strict`)."""
    request = request or {}
    planned = _PLANNED or info_for(PROCESS, ("the worker was not started by the sandbox",))
    wanted = planned.level
    reasons = list(planned.reasons)
    _keep_fds(keep_fds)
    if wanted != PROCESS:
        linux.seccomp_library()   # loaded while every library folder is visible
    if not sys.platform.startswith("linux") or wanted == PROCESS:
        minimal_environment(staging)
        return info_for(PROCESS, tuple(reasons) or ("not requested",)), staging
    if wanted == STRICT and _IN_NAMESPACES:
        try:
            files = _staged_files(staging)
            _strict_filesystem(staging, list(request.get("hide", [])), files)
            if os.geteuid() == 0:
                _drop_to_sandbox_uid()
            else:
                linux.drop_capabilities()
            _no_new_privileges()
            filtered = linux.load_seccomp_filter()
            os.chdir(staging)
            minimal_environment(staging)
            return info_for(STRICT, uid=os.getuid(), seccomp=filtered), staging
        except OSError as exc:
            # Half set up: not safe to go on as if strict, nor to go back.
            raise SandboxSetupError(f"the strict sandbox could not be set up ({exc})") from None
    if wanted == STRICT:  # refused at run time although the probe worked: the safe way down
        reasons.append(_NAMESPACE_FAILURE or "the worker was not started in new namespaces")
        minimal_environment(staging)
        return info_for(PROCESS, tuple(reasons)), staging
    if os.geteuid() == 0:
        try:
            scratch = _uid_scratch(staging)
            _drop_to_sandbox_uid()
            _no_new_privileges()
            filtered = linux.load_seccomp_filter()
            os.chdir(scratch)
            minimal_environment(scratch)
            return info_for(UID, tuple(reasons), seccomp=filtered), scratch
        except OSError as exc:
            raise SandboxSetupError(f"the uid sandbox could not be set up ({exc})") from None
    minimal_environment(staging)
    return info_for(PROCESS, tuple(reasons) + ("not running as root",)), staging


def _uid_scratch(staging: str) -> str:
    """A folder of the sandbox uid's own, next to the judge's staging folder
    (which becomes 0700: the worker reaches its copy, nothing else there)."""
    workdir = os.path.dirname(staging)
    scratch = tempfile.mkdtemp(prefix="scratch-", dir=workdir)
    for folder, dirs, names in os.walk(staging):
        target = os.path.join(scratch, os.path.relpath(folder, staging))
        os.makedirs(target, exist_ok=True)
        for name in names:
            shutil.copyfile(os.path.join(folder, name), os.path.join(target, name))
    os.chmod(workdir, 0o711)
    os.chmod(staging, 0o700)
    os.chown(scratch, SANDBOX_UID, SANDBOX_GID)
    for folder, dirs, names in os.walk(scratch):
        for name in [*dirs, *names]:
            os.chown(os.path.join(folder, name), SANDBOX_UID, SANDBOX_GID)
    return scratch


class SandboxSetupError(OSError):
    """The worker could not finish its isolation: it refuses to run student code."""

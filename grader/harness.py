"""What an exported student repository installs the grader from (`export-student --harness`).

A harness spec is one of:

- nothing (the default): a wheel of this very harness, built into the
  export's `dist/` and pinned by a local version label (`0.1.0+export.<hash>`)
  that no package index can serve, so the install can only take that wheel;
- a wheel file (`attn_grade-*.whl`): copied into `dist/` and pinned the same way;
- a folder holding attn-grade's source (its pyproject.toml): built into `dist/`;
- a VCS URL (`git+https://host/org/attn-grade@v0.1.0`), or a requirement
  (`attn-grade==0.1.0`, `attn-grade @ git+...`): used as given, after checking
  that it resolves (`git ls-remote` for git, `pip download` for a version).

A spec that cannot resolve is refused with one line saying why.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.version import __version__
from grader.errors import GraderError

DIST = "dist"
PROJECT = "attn-grade"
HARNESS_SOURCE = Path(__file__).resolve().parents[1]     # the checkout this grader runs from
_WHEEL_NAME = re.compile(r"^attn_grade-(?P<version>[^-]+)-.*\.whl$")
CHECK_TIMEOUT = 60.0


@dataclass
class Harness:
    requirement: str                      # the student pyproject's dependency
    description: str                      # for the student README
    wheel: Path | None = None             # to copy into dist/
    constraints: list[str] = field(default_factory=list)   # lines for constraints.txt


def _pinned(wheel: Path, description: str) -> Harness:
    version = _WHEEL_NAME.match(wheel.name).group("version")
    return Harness(f"{PROJECT}=={version}", description, wheel,
                   ["# The grader: the wheel in dist/ (its local version label exists on no index).",
                    f"--find-links {DIST}"])


def source_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((source / "grader").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update((source / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:12]


def build_wheel(source: Path, dest: Path) -> Path:
    """A wheel of the attn-grade source tree `source`, versioned `X+export.<hash>`, into `dest`."""
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file() or not (source / "grader").is_dir():
        raise GraderError(f"cannot build the harness from {source}: no pyproject.toml and grader/ there",
                          hint="installed from a wheel? pass --harness with that wheel, a git URL or "
                               "a version published on your index")
    text = pyproject.read_text(encoding="utf-8")
    if not re.search(rf'^name = "{PROJECT}"$', text, re.M):
        raise GraderError(f"{pyproject} is not attn-grade's")
    version = f"{__version__}+export.{source_digest(source)}"
    with tempfile.TemporaryDirectory(prefix="attn-grade-wheel-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        shutil.copytree(source / "grader", copy / "grader",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in ("README.md", "LICENSE"):
            if (source / name).is_file():
                shutil.copy(source / name, copy / name)
        (copy / "pyproject.toml").write_text(
            re.sub(r'^version = ".*"$', f'version = "{version}"', text, count=1, flags=re.M),
            encoding="utf-8")
        out = Path(tmp) / "dist"
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                   "--no-build-isolation", "--wheel-dir", str(out), str(copy)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        wheels = sorted(out.glob("attn_grade-*.whl"))
        if result.returncode != 0 or not wheels:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise GraderError(f"could not build a wheel of the harness: {tail[0]}",
                              hint="pip and setuptools must be installed where attn-grade runs")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / wheels[0].name
        shutil.copy(wheels[0], target)
        return target


def _check_git(url: str) -> None:
    repo, ref = split_ref(url.removeprefix("git+"))
    git = shutil.which("git")
    if git is None:
        raise GraderError(f"cannot check --harness {url}: git is not installed")
    command = [git, "ls-remote", "--exit-code", repo] + ([ref] if ref else [])
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except subprocess.TimeoutExpired:
        raise GraderError(f"--harness {url}: no answer from {repo} in {CHECK_TIMEOUT:g} s") from None
    if result.returncode != 0:
        reason = (f"no tag or branch {ref!r}" if result.returncode == 2
                  else (result.stderr.strip().splitlines() or ["unreachable"])[-1])
        raise GraderError(f"--harness {url} does not resolve: {reason}",
                          hint="check the URL and the tag or branch after @")


def split_ref(url: str) -> tuple[str, str]:
    """`https://host/org/repo@v1` → (`https://host/org/repo`, `v1`); the `@` of user@host is kept."""
    scheme, sep, rest = url.partition("://")
    path_start = rest.find("/")
    at = rest.rfind("@")
    if at > path_start >= 0:
        return f"{scheme}{sep}{rest[:at]}", rest[at + 1:].split("#")[0]
    return url.split("#")[0], ""


def _check_requirement(spec: str) -> None:
    """A `attn-grade==X` style requirement must be downloadable from the configured index."""
    with tempfile.TemporaryDirectory(prefix="attn-grade-harness-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, spec]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise GraderError(f"--harness {spec}: the package index did not answer in "
                              f"{CHECK_TIMEOUT:g} s") from None
    if result.returncode != 0:
        raise GraderError(f"--harness {spec} does not resolve: no package index here has it",
                          hint="leave --harness out to ship a wheel of this harness in dist/, or pass a "
                               "git URL ('git+https://github.com/ORG/attn-grade@v0.1.0')")


def resolve(spec: str | None, dest: Path) -> Harness:
    """The harness an export installs; wheels are written into `dest/dist/`."""
    if spec is None or not spec.strip():
        return _pinned(build_wheel(HARNESS_SOURCE, dest / DIST), f"{PROJECT} {__version__}, the wheel in dist/")
    spec = spec.strip()
    path = Path(spec).expanduser()
    if spec.endswith(".whl") or path.is_file():
        if not path.is_file():
            raise GraderError(f"--harness {spec}: no such wheel")
        if not _WHEEL_NAME.match(path.name):
            raise GraderError(f"--harness {spec} is not a wheel of attn-grade (attn_grade-VERSION-...whl)")
        (dest / DIST).mkdir(parents=True, exist_ok=True)
        target = dest / DIST / path.name
        shutil.copy(path, target)
        return _pinned(target, f"{PROJECT}, the wheel in dist/")
    if path.is_dir():
        return _pinned(build_wheel(path.resolve(), dest / DIST), f"{PROJECT}, the wheel in dist/")
    if ("/" in spec or spec.startswith(".")) and " @ " not in spec and "://" not in spec:
        raise GraderError(f"--harness {spec}: no such file or folder")
    if re.match(r"^(git|hg|svn|bzr)\+", spec):
        if spec.startswith("git+"):
            _check_git(spec)
        return Harness(f"{PROJECT} @ {spec}", spec)
    requirement = check_requirement_text(spec)
    if " @ " in requirement:
        url = requirement.split(" @ ", 1)[1].strip()
        if url.startswith("git+"):
            _check_git(url)
        return Harness(requirement, url)
    _check_requirement(requirement)
    return Harness(requirement, requirement)


def check_requirement_text(harness: str) -> str:
    """A PEP 508 requirement naming attn-grade, or a one-line error."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(harness)
    except InvalidRequirement as exc:
        raise GraderError(f"--harness {harness!r} is neither a path, a wheel, a VCS URL nor a "
                          f"requirement ({exc})",
                          hint="e.g. a wheel, 'git+https://github.com/ORG/attn-grade@v0.1.0' or "
                               "attn-grade==0.1.0") from None
    if requirement.name.lower().replace("_", "-") != PROJECT:
        raise GraderError(f"--harness {harness!r} does not install attn-grade")
    return harness

"""The code version of the project: what a release says it was built from.

When the dbt project is (inside) a git checkout, it is the last commit that touched the project
folder plus a hash of its uncommitted changes; otherwise a content hash of the project's files.
Either way two builds from different SQL, YAML or seeds carry different code versions, and the
platform's own repository plays no part in it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Files that are the project's code (dbt_packages included: vendored macros are code too).
_CODE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py", ".jinja", ".txt"}
_SKIPPED_DIRS = {"target", "logs", ".git", "__pycache__", ".venv"}


@dataclass(frozen=True)
class CodeVersion:
    commit: str | None  # last commit touching the project; None outside git
    dirty_hash: str | None  # uncommitted changes (git) or the content hash (no git)

    @property
    def label(self) -> str:
        """`<commit12>`, `<commit12>+dirty.<hash8>`, or `content.<hash12>` outside git."""
        if self.commit is None:
            return f"content.{(self.dirty_hash or '')[:12]}"
        base = self.commit[:12]
        return f"{base}+dirty.{self.dirty_hash[:8]}" if self.dirty_hash else base


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def project_files(project_dir: Path) -> list[Path]:
    """The project's code files, in a stable order."""
    found = []
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        found += [Path(root) / f for f in sorted(files) if Path(f).suffix in _CODE_SUFFIXES]
    return found


def content_hash(project_dir: Path) -> str:
    """sha256 over every code file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in project_files(project_dir):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamp(project_dir: Path) -> tuple:
    """Changes whenever a code file changes (mtime and size) or git moves (a commit, a checkout,
    staging), so the cache below stays right in a long-running process (the daemon) without
    hashing or running git on every call."""
    files = tuple(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in project_files(project_dir)
    )
    return files + _git_stamp(project_dir)


def _git_stamp(project_dir: Path) -> tuple:
    for folder in (project_dir, *project_dir.parents):
        git = folder / ".git"
        if git.exists():
            marks = [git / "HEAD", git / "index", git / "logs" / "HEAD"] if git.is_dir() else [git]
            return (str(git), *(m.stat().st_mtime_ns if m.exists() else 0 for m in marks))
    return ()


@lru_cache(maxsize=8)
def _code_version(project_dir: Path, stamp: tuple) -> CodeVersion:
    if _git(["rev-parse", "--is-inside-work-tree"], project_dir) is None:
        return CodeVersion(None, content_hash(project_dir))
    commit = (_git(["log", "-1", "--format=%H", "--", "."], project_dir) or "").strip() or None
    diff = _git(["diff", "HEAD", "--", "."], project_dir) or ""
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--", "."], project_dir) or ""
    for name in untracked.split():
        path = project_dir / name
        if path.is_file() and path.suffix in _CODE_SUFFIXES:
            diff += name + hashlib.sha256(path.read_bytes()).hexdigest()
    if commit is None:  # a git checkout where the project was never committed
        return CodeVersion(None, content_hash(project_dir))
    return CodeVersion(commit, hashlib.sha256(diff.encode()).hexdigest() if diff else None)


def current_code_version(project_dir: Path) -> CodeVersion:
    """The code version of the dbt project at `project_dir`, read now."""
    project_dir = Path(project_dir).resolve()
    return _code_version(project_dir, _stamp(project_dir))

"""The code version of the running platform: git commit plus a hash of uncommitted changes."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from elt_platform.settings import REPO_ROOT


@dataclass(frozen=True)
class CodeVersion:
    commit: str | None
    dirty_hash: str | None

    @property
    def label(self) -> str:
        """`<commit12>` or `<commit12>+dirty.<hash8>`; `unversioned` outside a git checkout."""
        if self.commit is None:
            return "unversioned"
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


@lru_cache(maxsize=8)
def current_code_version(root: Path = REPO_ROOT) -> CodeVersion:
    """Read once per process: runs launched from the same process share one code version."""
    commit = _git(["rev-parse", "HEAD"], root)
    if commit is None:
        return CodeVersion(None, None)
    diff = _git(["diff", "HEAD", "--", "."], root) or ""
    untracked = _git(["ls-files", "--others", "--exclude-standard"], root) or ""
    dirty = diff + untracked
    return CodeVersion(
        commit.strip(), hashlib.sha256(dirty.encode()).hexdigest() if dirty else None
    )

"""glibc's huge-page tunable for the commands that run XLA programs (specc/malloc.py): when the `specc` command
re-executes itself with it, and that a real `specc train` does (its banner says so) where the host allows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from specc.malloc import glibc_version, huge_pages_on, thp_mode, tuned_environment

ROOT = Path(__file__).resolve().parents[1]
NEW, OLD = (2, 36), (2, 31)


@pytest.mark.parametrize(
    ("argv", "env", "thp", "glibc", "tunables"),
    [
        (["specc", "train", "a.net"], {}, "madvise", NEW, "glibc.malloc.hugetlb=1"),
        (["specc", "evaluate", "runs/a"], {}, "madvise", NEW, "glibc.malloc.hugetlb=1"),
        # the user's own tunables are kept, the new one added
        (
            ["specc", "sweep", "a.net"],
            {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
            "madvise",
            NEW,
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1",
        ),
        # nothing to gain or no way to ask
        (["specc", "check", "a.net"], {}, "madvise", NEW, None),
        (["specc", "dot", "a.net"], {}, "madvise", NEW, None),
        (["specc", "--version"], {}, "madvise", NEW, None),
        (["specc"], {}, "madvise", NEW, None),
        (["specc", "train", "a.net"], {}, "always", NEW, None),
        (["specc", "train", "a.net"], {}, "never", NEW, None),
        (["specc", "train", "a.net"], {}, None, NEW, None),
        (["specc", "train", "a.net"], {}, "madvise", OLD, None),
        (["specc", "train", "a.net"], {}, "madvise", None, None),
        # the user's say, and no loop: the re-executed process finds the tunable given
        (["specc", "train", "a.net"], {"SPECC_MALLOC": "keep"}, "madvise", NEW, None),
        (["specc", "train", "a.net"], {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise", NEW, None),
        (["specc", "train", "a.net"], {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, "madvise", NEW, None),
        # a bench script: any arguments
        (None, {}, "madvise", NEW, "glibc.malloc.hugetlb=1"),
    ],
)
def test_which_commands_are_re_executed_with_the_tunable(
    argv: list[str] | None,
    env: dict[str, str],
    thp: str | None,
    glibc: tuple[int, ...] | None,
    tunables: str | None,
) -> None:
    got = tuned_environment(argv, {"HOME": "/h", **env}, thp, glibc)
    if tunables is None:
        assert got is None
    else:
        assert got == {"HOME": "/h", **env, "GLIBC_TUNABLES": tunables}


def test_the_hosts_settings_are_read(tmp_path: Path) -> None:
    mode = tmp_path / "enabled"
    mode.write_text("always [madvise] never\n")
    assert thp_mode(mode) == "madvise"
    mode.write_text("[always] madvise never\n")
    assert thp_mode(mode) == "always"
    assert thp_mode(tmp_path / "absent") is None
    version = glibc_version()
    assert version is None or (len(version) >= 2 and version >= (2, 0))
    on = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
    assert huge_pages_on(on, "madvise") and huge_pages_on(on, "always") and not huge_pages_on(on, "never")
    assert huge_pages_on({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=2"}, "never")
    assert not huge_pages_on({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise")
    assert not huge_pages_on({}, "madvise")


@pytest.mark.parametrize("keep", [False, True])
def test_specc_train_runs_with_malloc_in_huge_pages_where_the_host_allows(tmp_path: Path, keep: bool) -> None:
    """The command line as a user types it (`python -m specc train`): re-executed with the tunable, which the
    start banner reports, unless SPECC_MALLOC=keep."""
    allowed = sys.platform == "linux" and thp_mode() == "madvise" and (glibc_version() or (0,)) >= (2, 35)
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "SPECC_MALLOC")}
    if keep:
        env["SPECC_MALLOC"] = "keep"
    spec, out = str(ROOT / "specs" / "xor_mlp.net"), str(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, "-m", "specc", "train", spec, "--epochs", "2", "--out", out],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    banner = next(line for line in done.stderr.splitlines() if line.startswith("devices:"))
    assert ("malloc in huge pages" in banner) == (allowed and not keep), banner

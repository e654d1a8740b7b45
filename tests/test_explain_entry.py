"""The ``sglrp`` command's entry: ``explain --quiet`` silences TensorFlow's C++ notices (there and
in sglrp's Ray workers only), and ``make demo`` runs on the recommended engine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
#: TensorFlow's C++ info and warning notices: absl's (TF 2.21) and TensorFlow's own (TF 2.14).
NOTICE = re.compile(r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
                    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\]"
                    r"|WARNING: All log messages before absl::InitializeLog)")


def python(*args, cwd, env=None):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("entry", ["console script", "-m"])
def test_quiet_prints_errors_and_the_summary_only(tmp_path, entry):
    """Issue 18.13: ``--quiet`` still printed TensorFlow's ``I0000`` lines (TF 2.21)."""
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "a.png")
    if entry == "-m":
        command = ["-m", "sglrp.cli"]
    else:  # what pip writes for [project.scripts] sglrp = "sglrp.cli:main"
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "sglrp").write_text(
            "import sys\nfrom sglrp.cli import main\nsys.exit(main())\n")
        command = [str(tmp_path / "bin" / "sglrp")]
    proc = python(*command, "explain", "a.png", "missing.png", "--model", "demo",
                  "--method", "lrp.epsilon", "--out", "out", "--quiet", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if NOTICE.match(line)], proc.stderr
    assert lines[:-1] == ["error: missing.png: no such file"], proc.stderr
    assert lines[-1].startswith("done: 1 ok, 0 skipped, 1 failed")


def test_the_filter_acts_in_the_command_and_in_workers_only(tmp_path):
    probe = "import sglrp, sglrp._stderr as s; print(s._installed)"
    plain = python("-c", probe, cwd=tmp_path)
    worker = python("-c", probe, cwd=tmp_path, env={"SGLRP_FILTER_TF_NOTICES": "1"})
    assert plain.stdout.strip() == "False"  # import sglrp alone changes nothing
    assert worker.stdout.strip() == "True"
    assert not [line for line in worker.stderr.splitlines() if NOTICE.match(line)], \
        worker.stderr
    from sglrp import _stderr

    assert _stderr.cli_quiet(["/venv/bin/sglrp", "explain", "x.png", "--quiet"])
    assert _stderr.cli_quiet(["python", "-m", "sglrp.cli", "explain", "x", "--quiet"])
    assert not _stderr.cli_quiet(["/venv/bin/sglrp", "explain", "x.png"])
    assert not _stderr.cli_quiet(["python", "-m", "pytest", "--quiet", "explain"])
    assert not _stderr.cli_quiet(["/venv/bin/sglrp", "demo", "--quiet"])


def test_filter_keeps_everything_else_in_order(tmp_path):
    script = (
        "import os, sys\n"
        "from sglrp import _stderr\n"
        "_stderr.filter_notices()\n"
        "os.write(2, b'I0000 00:00:1796652051.543544   14764 cudart_stub.cc:31] notice\\n')\n"
        "os.write(2, b'2026-12-07 13:40:40.725699: I tensorflow/core/util/port.cc:153] x\\n')\n"
        "print('python line', file=sys.stderr, flush=True)\n"
        "os.write(2, b'E0000 00:00:1796652051.543544   14764 cuda.cc:31] an error\\n')\n"
        "os.write(2, b'no newline at the end')\n")
    proc = python("-c", script, cwd=tmp_path, env={"SGLRP_FILTER_TF_NOTICES": "1"})
    assert proc.returncode == 0
    assert proc.stderr == ("python line\nE0000 00:00:1796652051.543544   14764 cuda.cc:31] an "
                           "error\nno newline at the end")


# -- 14. make demo ---------------------------------------------------------------------------------
def test_make_demo_runs_on_the_keras3_engine(tmp_path):
    """Issue 18.14: ``make demo`` ran on the innvestigate environment (TensorFlow 2.14)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")

    # Under ``make test`` the parent's MAKEFLAGS (-w) would add "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def dry_run(target):  # -n: print the commands, run none
        proc = subprocess.run([make, "-n", "--no-print-directory", target], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    demo = dry_run("demo")
    assert demo[-1] == ".venv-keras3/bin/sglrp demo --out results/demo"
    assert any("tensorflow==2.21" in line for line in demo)  # a fresh machine: installs it
    other = dry_run("demo-innvestigate")
    assert other[-1] == ".venv/bin/sglrp demo --out results/demo-innvestigate"
    assert any(".[innvestigate,ray,test]" in line for line in other)
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    assert "make demo-innvestigate" in readme

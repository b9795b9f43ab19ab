"""Fixtures of the end-to-end suite: both documented pipelines through the engine
against localcloud, the kill tests, and the Python example plugin.

Binaries come from $STREAMPORT_BIN_DIR, or are built with cargo (debug) into the
workspace's target directory. A test whose binary does not exist yet (a crate that has
not landed) is skipped with a message naming it.
"""

import os
import pathlib
import subprocess
import sys

import pytest

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(WORKSPACE / "examples" / "workload"))

import pipelines  # noqa: E402

PACKAGES = ["localcloud", "engine", "reader-otsstream", "writer-oss", "writer-odps", "reader-stream", "writer-stream"]


@pytest.fixture(scope="session")
def bins():
    if not os.environ.get("STREAMPORT_BIN_DIR"):
        cmd = ["cargo", "build", "--quiet"]
        for p in PACKAGES:
            cmd += ["-p", p]
        subprocess.run(cmd, cwd=WORKSPACE, check=True)
    return pipelines.bin_dir()


def require(bins, *names):
    for name in names:
        if not (bins / name).exists():
            pytest.skip("%s is not built by this workspace yet (its crate has no binary)" % name)


@pytest.fixture
def cloud(bins):
    require(bins, "localcloud")
    c = pipelines.Localcloud(str(bins / "localcloud"))
    yield c
    c.stop()


@pytest.fixture
def oss_bins(bins):
    require(bins, "engine", "reader-otsstream", "writer-oss")
    return bins


@pytest.fixture
def odps_bins(bins):
    require(bins, "engine", "reader-otsstream", "writer-odps")
    return bins


@pytest.fixture
def pipeline_bins(oss_bins, odps_bins):
    return oss_bins

"""Shared fixtures for the official-SDK conformance suite.

The suite runs the official Python SDKs (tablestore, oss2, alibabacloud-oss-v2,
pyodps) against `localcloud serve`. The binary is taken from $LOCALCLOUD_BIN, or
built with cargo into the workspace's target directory.

Fixtures:
  localcloud  -- dict parsed from the JSON line `localcloud serve` prints:
                 {"ots": {"endpoint", ...}, "oss": {...}, "odps": {...},
                  "access_key_id", "access_key_secret"}
  admin       -- helper to drive the test-control interface (`/-/` on each port).
"""

import json
import os
import subprocess
import sys
import pathlib

import pytest
import requests

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]


def _localcloud_bin():
    explicit = os.environ.get("LOCALCLOUD_BIN")
    if explicit:
        return explicit
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "localcloud"], cwd=WORKSPACE, check=True
    )
    target = os.environ.get("CARGO_TARGET_DIR", str(WORKSPACE / "target"))
    return str(pathlib.Path(target) / "debug" / "localcloud")


@pytest.fixture(scope="session")
def localcloud():
    proc = subprocess.Popen(
        [_localcloud_bin(), "serve"],
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("localcloud serve exited before printing its endpoints")
    info = json.loads(line)
    yield info
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Admin:
    """Drives one service's test-control interface."""

    def __init__(self, endpoint):
        self.endpoint = endpoint.rstrip("/")

    def add_fault(self, **rule):
        r = requests.post(self.endpoint + "/-/faults", json=rule, timeout=10)
        r.raise_for_status()

    def clear_faults(self):
        requests.delete(self.endpoint + "/-/faults", timeout=10).raise_for_status()

    def faults(self):
        return requests.get(self.endpoint + "/-/faults", timeout=10).json()

    def advance_clock(self, ms):
        r = requests.post(self.endpoint + "/-/clock", json={"advance_ms": ms}, timeout=10)
        r.raise_for_status()
        return r.json()

    def reset_clock(self):
        r = requests.post(self.endpoint + "/-/clock", json={"offset_ms": 0}, timeout=10)
        r.raise_for_status()

    def get(self, path, **kw):
        r = requests.get(self.endpoint + path, timeout=30, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path, body=None):
        r = requests.post(self.endpoint + path, json=body, timeout=30)
        r.raise_for_status()
        return r.json() if r.content else None


@pytest.fixture(scope="session")
def admin(localcloud):
    """admin["ots"], admin["oss"], admin["odps"]: one Admin per service."""
    return {name: Admin(localcloud[name]["endpoint"]) for name in ("ots", "oss", "odps")}


@pytest.fixture(autouse=True)
def _no_leftover_faults(request):
    """Every test starts and ends with no fault rules and the clock at wall time."""
    yield
    if "admin" in request.fixturenames:
        admin = request.getfixturevalue("admin")
        for a in admin.values():
            a.clear_faults()
            a.reset_clock()

"""Helpers for the MaxCompute (pyodps) conformance tests.

The emulator serves the service API under `<endpoint>/api` and the Tunnel at the
root of the same port; pyodps discovers the tunnel through the service. Control
routes used here: `/-/odps/projects/<p>/tables/<t>` (committed rows per
partition), `/-/odps/uploads`, `/-/odps/requests` (what the SDK sent).
"""

import json
import pathlib
import uuid

import requests
from odps import ODPS

TESTDATA = pathlib.Path(__file__).resolve().parents[1] / "localcloud" / "testdata" / "odps"


def client(localcloud, access_id=None, secret=None, **kw):
    """An ODPS client for the emulator's default project."""
    info = localcloud["odps"]
    return ODPS(
        access_id or localcloud["access_key_id"],
        secret or localcloud["access_key_secret"],
        info["project"],
        endpoint=info["endpoint"] + "/api",
        **kw,
    )


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def dump(admin, table, project="localcloud"):
    """The committed rows of `table`, as {spec: rows}."""
    d = admin["odps"].get(f"/-/odps/projects/{project}/tables/{table}")
    return {p["spec"]: p["rows"] for p in d["partitions"]}


def request_log(admin):
    return admin["odps"].get("/-/odps/requests")["requests"]


def clear_request_log(localcloud):
    requests.delete(localcloud["odps"]["endpoint"] + "/-/odps/requests", timeout=10).raise_for_status()


def uploads(admin):
    return admin["odps"].get("/-/odps/uploads")["uploads"]


def captured_requests():
    """(step, request) pairs of pyodps' own capture (testdata/odps/http_capture.json)."""
    capture = json.loads((TESTDATA / "http_capture.json").read_text())
    return [(s["step"], r) for s in capture["steps"] for r in s["requests"]]

"""`<plugin> spec` against the plugin's README: every default is a JSON value of the
declared type (not JSON text inside a string), every parameter is documented in the
README, and the two say the same of writer-odps's `truncate`."""

import json
import re
import subprocess

import pytest

from conftest import WORKSPACE, require

PLUGINS = {
    "reader-otsstream": "reader-otsstream/README.md",
    "writer-oss": "writer-oss/README.md",
    "writer-odps": "writer-odps/README.md",
    "reader-stream": "tests/reader-stream/README.md",
    "writer-stream": "tests/writer-stream/README.md",
}
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
              "array": list, "object": dict}


PYTHON_PLUGIN = WORKSPACE / "examples" / "plugins" / "writer-pyjsonl"


def spec(bins, name):
    if name == PYTHON_PLUGIN.name:
        path = PYTHON_PLUGIN
    else:
        require(bins, name)
        path = bins / name
    out = subprocess.run([str(path), "spec"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def double_encoded(text):
    """`"\"UTF-8\""`: JSON text of a string, inside a string."""
    try:
        return len(text) >= 2 and text[0] == text[-1] == '"' and isinstance(json.loads(text), str)
    except ValueError:
        return False


@pytest.mark.parametrize("name", sorted(PLUGINS) + [PYTHON_PLUGIN.name])
def test_spec_defaults_are_values_of_the_declared_type(bins, name):
    for p in spec(bins, name)["parameters"]:
        default = p["default"]
        if default is None:
            continue
        want = JSON_TYPES[p["type"]]
        ok = isinstance(default, want) and not (p["type"] in ("integer", "number") and isinstance(default, bool))
        ok = ok and not (isinstance(default, str) and double_encoded(default))
        assert ok, "%s spec: %s (%s) has the default %r" % (name, p["name"], p["type"], default)


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_every_spec_parameter_is_in_the_readme(bins, name):
    readme = (WORKSPACE / PLUGINS[name]).read_text(encoding="utf-8")
    missing = [p["name"] for p in spec(bins, name)["parameters"] if "`%s`" % p["name"] not in readme]
    assert not missing, "%s: parameters in `spec` but not in %s: %s" % (name, PLUGINS[name], missing)


def readme_meaning(readme, key):
    """The last cell of the parameter table's row for `key`."""
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0] == "`%s`" % key:
            return cells[-1]
    return None


def test_writer_odps_spec_and_readme_say_the_same_of_truncate(bins):
    readme = (WORKSPACE / PLUGINS["writer-odps"]).read_text(encoding="utf-8")
    doc = {p["name"]: p["doc"] for p in spec(bins, "writer-odps")["parameters"]}["truncate"]
    want = readme_meaning(readme, "truncate")
    assert want is not None
    assert re.sub(r"[`*]", "", want) == doc, "writer-odps spec: %r; README: %r" % (doc, want)

"""The release tarball on a machine without Rust: `scripts/package` builds it (here from
the binaries the suite already has, `--bin-dir`, to keep CI fast; the real one is built
with `scripts/package`), the test unpacks it into a temporary directory and runs
everything under `env -i`: no cargo, no Rust, no variable of the build environment, and
PATH only where a test says so.

* the tarball holds streamport (and engine), the three plugins and nothing else, man
  pages, completions, examples, and SHA-256 sums that verify;
* `streamport run examples/stream.json` runs with DataX's test plugins (not in the
  tarball) taken from `--plugin-dir`, or from PATH, and fails cleanly with neither;
* the plugin search order: `--plugin-dir`, then beside the engine, then PATH;
* a Tablestore Stream -> OSS job, the tarball's own example job and data-source file,
  against localcloud (shipped separately, for tests), checked row by row.
"""

import json
import os
import pathlib
import shutil
import stat
import subprocess

import pytest

import expected_rows as er
import pipelines
from checks import check_oss
from conftest import WORKSPACE, require

PLUGINS = ["reader-otsstream", "writer-oss", "writer-odps"]


@pytest.fixture(scope="module")
def unpacked(bins, tmp_path_factory):
    """The tarball, unpacked: its root directory."""
    require(bins, "streamport", *PLUGINS)
    out = tmp_path_factory.mktemp("package")
    proc = subprocess.run([str(WORKSPACE / "scripts" / "package"), "--bin-dir", str(bins), "--out", str(out)],
                          cwd=WORKSPACE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    tarballs = list(out.glob("streamport-*-x86_64-linux-gnu.tar.gz"))
    assert len(tarballs) == 1, list(out.iterdir())
    tarball = tarballs[0]
    # The checksum file beside the tarball verifies it.
    subprocess.run(["sha256sum", "-c", tarball.name + ".sha256"], cwd=out, check=True,
                   stdout=subprocess.DEVNULL)
    dest = tmp_path_factory.mktemp("opt")
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(dest)], check=True)
    (root,) = list(dest.iterdir())
    return root


def bare(args, env=None, cwd=None, stdin=None, timeout=120):
    """Runs `args` under `env -i` with only the given variables."""
    assignments = ["%s=%s" % kv for kv in (env or {}).items()]
    return subprocess.run(["env", "-i"] + assignments + [str(a) for a in args], cwd=cwd, input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def test_tarball_holds_the_engine_and_the_three_plugins(unpacked):
    names = sorted(p.name for p in (unpacked / "bin").iterdir())
    assert names == sorted(["streamport", "engine", "streamport-exec"] + PLUGINS), names
    assert os.readlink(unpacked / "bin" / "engine") == "streamport"
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=unpacked, check=True)
    listed = {line.split()[1] for line in (unpacked / "SHA256SUMS").read_text().splitlines()}
    assert {"bin/streamport", "bin/writer-oss", "README.md", "LICENSE.md",
            "share/man/man1/streamport-run.1", "share/bash-completion/completions/streamport",
            "share/zsh/site-functions/_streamport", "examples/jobs/otsstream-to-oss.json"} <= listed, listed
    assert "glibc" in (unpacked / "README.md").read_text()
    assert "Apache" in (unpacked / "LICENSE.md").read_text()
    # Every binary names the same release and commit, with nothing from the environment.
    lines = {}
    for name in ["streamport", "engine", "streamport-exec"] + PLUGINS:
        proc = bare([unpacked / "bin" / name, "--version"])
        assert proc.returncode == 0, proc.stderr
        lines[name] = proc.stdout.strip()
    version = lines["streamport"].split(" ", 1)[1]
    assert " (commit " in version, lines
    for name, line in lines.items():
        want = "streamport" if name == "engine" else name
        assert line == "%s %s" % (want, version), lines


def test_stream_job_runs_from_the_tarball_under_env_i(unpacked, bins, tmp_path):
    # DataX's test plugins are not in the tarball: they come from --plugin-dir or PATH.
    extra = tmp_path / "test-plugins"
    extra.mkdir()
    for name in ["reader-stream", "writer-stream"]:
        shutil.copy2(bins / name, extra / name)
    streamport = unpacked / "bin" / "streamport"
    job = WORKSPACE / "examples" / "stream.json"

    proc = bare([streamport, "run", job, "--plugin-dir", extra, "--summary-json", tmp_path / "a.json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("DataX") == 10, proc.stdout
    assert json.loads((tmp_path / "a.json").read_text())["records"] == 10

    proc = bare([streamport, "run", job], env={"PATH": extra}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("DataX") == 10, proc.stdout

    # The job from stdin, the engine under its other name.
    proc = bare([unpacked / "bin" / "engine", "run", "-", "--plugin-dir", extra], cwd=tmp_path,
                stdin=job.read_text())
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Neither: a configuration error naming the missing plugin.
    proc = bare([streamport, "run", job], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "reader-stream" in proc.stderr, proc.stderr


def fake_plugin(directory, name):
    path = directory / name
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_plugin_search_order(unpacked, tmp_path):
    """--plugin-dir first, then beside the engine, then PATH; a name found twice is
    taken from the first place."""
    first = tmp_path / "plugin-dir"
    on_path = tmp_path / "on-path"
    first.mkdir()
    on_path.mkdir()
    fake_plugin(first, "writer-oss")
    fake_plugin(on_path, "writer-oss")
    fake_plugin(on_path, "reader-otsstream")
    fake_plugin(on_path, "reader-mine")
    proc = bare([unpacked / "bin" / "streamport", "plugins", "--plugin-dir", first], env={"PATH": on_path})
    assert proc.returncode == 0, proc.stderr
    where = {line.split()[0]: line.split()[-1] for line in proc.stdout.splitlines()}
    assert where == {
        "writer-oss": str(first / "writer-oss"),
        "reader-otsstream": str(unpacked / "bin" / "reader-otsstream"),
        "writer-odps": str(unpacked / "bin" / "writer-odps"),
        "reader-mine": str(on_path / "reader-mine"),
    }, proc.stdout
    # Through a symbolic link to the engine (as /usr/local/bin/streamport), the plugins
    # beside the real file are found.
    link_dir = tmp_path / "usr-local-bin"
    link_dir.mkdir()
    (link_dir / "streamport").symlink_to(unpacked / "bin" / "streamport")
    proc = bare([link_dir / "streamport", "plugins"])
    assert proc.returncode == 0, proc.stderr
    assert sorted(line.split()[0] for line in proc.stdout.splitlines()) == sorted(PLUGINS), proc.stdout


def test_localcloud_job_runs_from_the_tarball_under_env_i(unpacked, cloud, tmp_path):
    """Tablestore Stream -> OSS: the tarball's example job and data-source file, its
    reader-otsstream and writer-oss found beside the engine, nothing on PATH."""
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.run_workload(cloud, log, window, changes=120, seed=21)
    ops = er.read_log(str(log))
    env = dict(cloud.env())
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    examples = unpacked / "examples"
    summary = tmp_path / "summary.json"
    args = [unpacked / "bin" / "streamport", "run", examples / "jobs" / "otsstream-to-oss.json",
            "--datasources", examples / "datasources.json", "--schedule-time", window.schedule_time,
            "--summary-json", summary]
    for k, v in pipelines.oss_params(window).items():
        args += ["-p", "%s=%s" % (k, v)]
    proc = bare(args, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = check_oss(cloud, ops, window)
    assert json.loads(summary.read_text())["records"] == rows
    # The secret of the data-source file never shows.
    assert cloud.info["access_key_secret"] not in proc.stderr

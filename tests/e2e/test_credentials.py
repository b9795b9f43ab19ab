"""Credentials without keys: both pipelines run with data sources that give no
accessId/accessKey, so every plugin takes the ECS RAM role from localcloud's emulated
instance metadata service (ALIBABA_CLOUD_ECS_METADATA names the role,
STREAMPORT_ECS_METADATA_ENDPOINT points at the emulator). The emulator's tokens live two
seconds; the job is slowed (a record speed limit, and Tablestore answering every
GetStreamRecord after 1.5 s) to last several times that, so tokens expire while the
tasks run and the plugins must fetch new ones ahead of expiry; the output is checked
row by row. With
refreshing turned off (STREAMPORT_TEST_CREDENTIALS_NO_REFRESH=1) the same job fails
with the services' expired-token error and commits nothing."""

import json
import os
import time

import pytest

import expected_rows as er
import pipelines
from checks import check_odps, check_oss

TTL_MS = 2000
ROLE = "streamport-exporter"


@pytest.fixture
def sts_cloud(bins):
    from conftest import require
    require(bins, "localcloud")
    c = pipelines.Localcloud(str(bins / "localcloud"),
                             extra_args=["--sts-ttl-ms", str(TTL_MS), "--ecs-role-name", ROLE])
    yield c
    c.stop()


def keyless(tmp_path):
    """examples/datasources.json without accessId/accessKey."""
    sources = json.loads(pipelines.DATASOURCES.read_text())
    for source in sources.values():
        source.pop("accessId")
        source.pop("accessKey")
    path = tmp_path / "datasources-keyless.json"
    path.write_text(json.dumps(sources, indent=2))
    return path


def slowed(tmp_path, job, old, new):
    text = job.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / ("slow-" + job.name)
    path.write_text(text.replace(old, new))
    return path


def env_without_keys(cloud, tmp_path, refresh=True):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALIBABA_CLOUD_", "ALIBABACLOUD_", "ALICLOUD_"))}
    env.update(cloud.env())
    del env["LOCALCLOUD_ACCESS_KEY_ID"], env["LOCALCLOUD_ACCESS_KEY_SECRET"]
    env["HOME"] = str(tmp_path)  # no aliyun CLI profile file
    env["ALIBABA_CLOUD_ECS_METADATA"] = ROLE
    env["STREAMPORT_ECS_METADATA_ENDPOINT"] = cloud.info["sts"]["endpoint"]
    if not refresh:
        env["STREAMPORT_TEST_CREDENTIALS_NO_REFRESH"] = "1"
    return env


def run(cloud, tmp_path, job, params, window, env):
    cmd = pipelines.engine_command(job, params, window, summary=tmp_path / "summary.json")
    i = cmd.index("--datasources")
    cmd[i + 1] = str(keyless(tmp_path))
    import subprocess
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, time.monotonic() - started


def sts_stats(cloud):
    return cloud.get("sts", "/-/sts/stats")


def slow_stream_reads(cloud, ms):
    """Every GetStreamRecord answers after `ms`: the reader task's requests then span
    token lifetimes, so it must sign later pages with refreshed tokens."""
    import urllib.request
    rule = {"operation": "GetStreamRecord", "kind": "latency", "ms": ms}
    req = urllib.request.Request(cloud.info["ots"]["endpoint"] + "/-/faults", method="POST",
                                 data=json.dumps(rule).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def prepare(cloud, tmp_path, changes, seed):
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, changes=changes, seed=seed)
    return window, er.read_log(str(log))


OSS_SLOW = ('"mbps": "1",', '"mbps": "1", "record": "15",')
ODPS_SLOW = ('"mbps": 7,', '"mbps": 7, "record": 15,')


def test_keyless_jobs_run_on_the_ecs_ram_role_through_expiring_tokens(sts_cloud, pipeline_bins, tmp_path):
    cloud = sts_cloud
    window, ops = prepare(cloud, tmp_path, changes=200, seed=31)
    env = env_without_keys(cloud, tmp_path)
    # Later than half a token's life: the reader's next page is signed with a
    # refreshed token.
    slow_stream_reads(cloud, ms=1500)
    for job, slow, check in [(pipelines.OSS_JOB, OSS_SLOW, lambda: check_oss(cloud, ops, window)),
                             (pipelines.ODPS_JOB, ODPS_SLOW, lambda: check_odps(cloud, ops, window))]:
        params = pipelines.oss_params(window) if job == pipelines.OSS_JOB else pipelines.odps_params()
        before = sts_stats(cloud)
        proc, seconds = run(cloud, tmp_path, slowed(tmp_path, job, *slow), params, window, env)
        assert proc.returncode == 0, proc.stderr[-4000:]
        after = sts_stats(cloud)
        rows = check()
        assert json.loads((tmp_path / "summary.json").read_text())["records"] == rows > 0
        # The job outlived several tokens, and the plugins got new ones from the
        # metadata service (the only source they had) as the old ones ran out.
        lifetimes = seconds * 1000 / TTL_MS
        assert lifetimes >= 3, "the job took %.1f s: too short to outlive tokens" % seconds
        assert after["metadata_calls"] > before["metadata_calls"]
        assert after["issued"] - before["issued"] >= 2, (before, after, seconds)
        assert "credentials from the ECS RAM role" in proc.stderr


def test_without_refresh_the_expired_token_fails_the_job(sts_cloud, oss_bins, tmp_path):
    cloud = sts_cloud
    window, _ = prepare(cloud, tmp_path, changes=200, seed=32)
    env = env_without_keys(cloud, tmp_path, refresh=False)
    # Longer than a token's life: the reader's next page is signed with an expired one.
    slow_stream_reads(cloud, ms=2500)
    job = slowed(tmp_path, pipelines.OSS_JOB, *OSS_SLOW)
    proc, _ = run(cloud, tmp_path, job, pipelines.oss_params(window), window, env)
    assert proc.returncode != 0
    # The Tablestore reader or the OSS writer was refused with the expired-token error.
    assert ("SecurityTokenExpired" in proc.stderr
            or "The security token you provided has expired" in proc.stderr), proc.stderr[-4000:]
    assert pipelines.oss_objects(cloud, pipelines.oss_prefix(window)) == {}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["committed"] == "none"

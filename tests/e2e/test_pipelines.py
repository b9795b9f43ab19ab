"""Both documented pipelines, end to end: the example jobs (the vendor's text) run by
the engine with the example data-source file against localcloud; the OSS objects and
the MaxCompute rows are compared row by row with the rows derived from the workload's
own log of operations."""

import base64
import json
import subprocess

import expected_rows as er
import pipelines
from checks import check_odps, check_oss
from conftest import require


def prepare(cloud, tmp_path, **workload):
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, **workload)
    return window, er.read_log(str(log))


def test_tablestore_stream_to_oss_csv(cloud, oss_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, changes=300, seed=11)
    summary = tmp_path / "summary.json"
    pipelines.run_engine(cloud, pipelines.OSS_JOB, pipelines.oss_params(window), window, summary=summary)
    rows = check_oss(cloud, ops, window)
    assert json.loads(summary.read_text())["records"] == rows


def test_tablestore_stream_to_maxcompute(cloud, odps_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, changes=300, seed=12)
    summary = tmp_path / "summary.json"
    pipelines.run_engine(cloud, pipelines.ODPS_JOB, pipelines.odps_params(), window, summary=summary)
    rows = check_odps(cloud, ops, window)
    assert json.loads(summary.read_text())["records"] == rows


def test_both_pipelines_across_a_shard_split(cloud, pipeline_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, changes=300, seed=13, split_after=150)
    pipelines.run_engine(cloud, pipelines.OSS_JOB, pipelines.oss_params(window), window)
    check_oss(cloud, ops, window, exact_order=False)
    pipelines.run_engine(cloud, pipelines.ODPS_JOB, pipelines.odps_params(), window)
    check_odps(cloud, ops, window)


def test_rerunning_a_window_gives_the_same_output(cloud, pipeline_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, changes=80, seed=14)
    for _ in range(2):
        pipelines.run_engine(cloud, pipelines.OSS_JOB, pipelines.oss_params(window), window)
        pipelines.run_engine(cloud, pipelines.ODPS_JOB, pipelines.odps_params(), window)
    check_oss(cloud, ops, window)
    check_odps(cloud, ops, window)


def test_maxcompute_with_sequence_info(cloud, odps_bins, tmp_path):
    """With "isExportSequenceInfo": true the sixth column carries
    `epoch_committime(µs)_rowindex_shard:line`. The log cannot know the server's commit
    time or the shard, so that column is checked on its own: ordered by it, the rows are
    the derived rows in commit order; the row index and line index are the ones the log
    predicts; the commit time lies within the change's send/answer interval."""
    window, ops = prepare(cloud, tmp_path, changes=120, seed=15)
    job = tmp_path / "with-sequence-info.json"
    text = pipelines.ODPS_JOB.read_text()
    assert text.count('"isExportSequenceInfo": false,') == 1
    job.write_text(text.replace('"isExportSequenceInfo": false,', '"isExportSequenceInfo": true,'))
    pipelines.run_engine(cloud, job, pipelines.odps_params(), window)
    got = pipelines.odps_rows(cloud, window)["pt=%s" % window.bizdate]
    parsed = []
    for row in got:
        m = er.SEQUENCE_INFO.match(row[5] or "")
        assert m, row
        epoch, ts_us, row_index, shard, line = m.groups()
        parsed.append(((int(ts_us), int(row_index), int(line)), shard, row))
    parsed.sort(key=lambda p: p[0])
    want = er.odps_person_rows(ops, pipelines.ODPS_TABLE, window.start_ms, window.end_ms)
    shape = er.sequence_info_shape(ops, pipelines.ODPS_TABLE, window.start_ms, window.end_ms)
    assert len(parsed) == len(want) == len(shape)
    for ((ts_us, row_index, line), shard, row), w, (w_row_index, w_line, before, after) in zip(
            parsed, want, shape):
        assert row[:5] == w[:5]
        assert (row_index, line) == (w_row_index, w_line)
        assert before <= ts_us // 1000 <= after
        assert shard


def test_standalone_reader_prints_the_window_as_json_lines(cloud, bins, tmp_path):
    """examples/jobs/otsstream-standalone.json: the reader alone, `--format jsonl`."""
    require(bins, "reader-otsstream")
    window, ops = prepare(cloud, tmp_path, changes=100, seed=16)
    info = cloud.info
    cmd = [str(bins / "reader-otsstream"), "read", "--format", "jsonl", "--config",
           str(pipelines.WORKSPACE / "examples" / "jobs" / "otsstream-standalone.json")]
    for k, v in {"endpoint": info["ots"]["endpoint"], "instance": info["ots"]["instance"],
                 "accessId": info["access_key_id"], "accessKey": info["access_key_secret"],
                 "startTime": window.local(window.start_ms // 1000),
                 "endTime": window.local(window.end_ms // 1000)}.items():
        cmd += ["-p", "%s=%s" % (k, v)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    got = [[base64.b64decode(v["bytes"]) if isinstance(v, dict) else v for v in json.loads(line)]
           for line in out.splitlines()]
    want = er.multi_version_rows(ops, pipelines.ODPS_TABLE, window.start_ms, window.end_ms)
    assert got == want

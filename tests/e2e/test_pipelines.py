"""Both documented pipelines, end to end: the example jobs (the vendor's text) run by
the engine with the example data-source file against localcloud; the OSS objects and
the MaxCompute rows are compared row by row with the rows derived from the workload's
own log of operations."""

import json

import expected_rows as er
import pipelines
from checks import check_odps, check_oss


def prepare(cloud, tmp_path, **workload):
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, **workload)
    return window, er.read_log(str(log))


def test_tablestore_stream_to_oss_csv(cloud, pipeline_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, changes=300, seed=11)
    summary = tmp_path / "summary.json"
    pipelines.run_engine(cloud, pipelines.OSS_JOB, pipelines.oss_params(window), window, summary=summary)
    rows = check_oss(cloud, ops, window)
    assert json.loads(summary.read_text())["records"] == rows


def test_tablestore_stream_to_maxcompute(cloud, pipeline_bins, tmp_path):
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

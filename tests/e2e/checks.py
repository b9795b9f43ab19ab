"""Comparisons of pipeline output with the rows derived from the workload log."""

import collections
import re

import pipelines


def first_difference(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "row %d: got %r, want %r" % (i, g, w)
    return "got %d rows, want %d" % (len(got), len(want))


def check_oss(cloud, ops, window, exact_order=True):
    """The bucket holds exactly one CSV object for the window (one writer task), named
    `<object>__<32 hex>`, whose records are the derived ones."""
    everything = pipelines.oss_objects(cloud)
    prefix = pipelines.oss_prefix(window)
    names = sorted(everything)
    assert len(names) == 1 and re.fullmatch(re.escape(prefix) + r"__[0-9a-f]{32}", names[0]), names
    got = pipelines.split_csv_records(everything[names[0]])
    want, _ = pipelines.expected_oss_records(ops, window)
    assert len(want) > 0
    if exact_order:
        assert got == want, first_difference(got, want)
    else:
        assert collections.Counter(got) == collections.Counter(want), first_difference(
            sorted(got), sorted(want))
        # Records of one row keep their order across the shard split.
        per_key = collections.defaultdict(list)
        for r in got:
            per_key[r.split(",")[0]].append(r)
        want_per_key = collections.defaultdict(list)
        for r in want:
            want_per_key[r.split(",")[0]].append(r)
        assert per_key == want_per_key
    return len(got)


def check_oss_parquet(cloud, ops, window):
    """The bucket holds exactly one Parquet object for the window, named
    `<object>__<32 hex>.parquet`, whose rows (read with pyarrow) are the derived ones."""
    prefix = pipelines.parquet_prefix(window)
    objects = pipelines.parquet_objects(cloud, "datalake/")
    names = sorted(objects)
    assert len(names) == 1 and re.fullmatch(re.escape(prefix) + r"__[0-9a-f]{32}\.parquet", names[0]), names
    table = pipelines.parquet_table(objects[names[0]])
    assert table.column_names == pipelines.PARQUET_COLUMNS
    got = [list(r.values()) for r in table.to_pylist()]
    want = pipelines.expected_parquet_rows(ops, window)
    assert len(want) > 0
    assert got == want, first_difference(got, want)
    return len(got)


def check_odps(cloud, ops, window):
    """person holds exactly one partition, pt=<bizdate>, with exactly the derived rows."""
    parts = pipelines.odps_rows(cloud, window)
    assert sorted(parts) == ["pt=%s" % window.bizdate], sorted(parts)
    got = sorted(parts["pt=%s" % window.bizdate], key=pipelines.sort_key)
    want = sorted(pipelines.expected_odps_rows(ops, window), key=pipelines.sort_key)
    assert len(want) > 0
    assert got == want, first_difference(got, want)
    return len(got)

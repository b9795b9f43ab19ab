"""The expected-rows deriver on small hand-made operation logs (no services)."""

import base64

import pytest

import expected_rows as er

S, E = 1_000_000, 1_300_000


def change(seq, op, pk, cells=(), t=S + 1000, table="t", batch=None):
    return {"op": op, "table": table, "seq": seq, "pk": [["id", pk]], "cells": list(cells),
            "batch": batch, "t_before_ms": t, "t_after_ms": t + 5}


def put(name, value, ts):
    return {"kind": "put", "name": name, "value": value, "ts": ts}


LOG = [
    {"op": "create_table", "table": "t", "primary_key": [["id", "STRING"]]},
    change(1, "put", "a", [put("name", "x", 10)], t=S - 60_000),  # before the window
    change(2, "put", "a", [put("name", "Ann", 11), put("age", 30, 12)]),
    change(3, "update", "a", [put("score", 2.5, 13), {"kind": "delete_one", "name": "age", "ts": 12},
                              {"kind": "delete_all", "name": "avatar"}]),
    change(4, "update", "b", [{"kind": "delete_all", "name": "name"}]),
    change(5, "delete", "a"),
    change(6, "put", "c", [put("avatar", {"bytes": base64.b64encode(b"img").decode()}, 14),
                           put("name", "first", 15), put("name", "second", 16)],
           batch={"id": 1, "row_index": 1}),
    change(7, "put", "z", [put("name", "late", 17)], t=E + 30_000),  # after the window
    change(8, "put", "a", [put("name", "other table", 18)], table="u"),
]


def test_multi_version_rows_follow_the_datax_table():
    assert er.multi_version_rows(LOG, "t", S, E) == [
        ["a", None, None, None, "DR"],
        ["a", "name", 11, "Ann", "U"],
        ["a", "age", 12, 30, "U"],
        ["a", "score", 13, 2.5, "U"],
        ["a", "age", 12, None, "DO"],
        ["a", "avatar", None, None, "DA"],
        ["b", "name", None, None, "DA"],
        ["a", None, None, None, "DR"],
        ["c", None, None, None, "DR"],
        ["c", "avatar", 14, b"img", "U"],
        ["c", "name", 15, "first", "U"],
        ["c", "name", 16, "second", "U"],
    ]


def test_single_version_rows_ignore_deletes_and_keep_the_last_cell():
    assert er.single_version_rows(LOG, "t", S, E, ["id", "name"]) == [
        ["a", "Ann"], ["a", None], ["b", None], ["c", "second"],
    ]
    # Without the primary key among the columns, records with none of them are dropped.
    assert er.single_version_rows(LOG, "t", S, E, ["name"]) == [["Ann"], ["second"]]
    assert er.single_version_rows(LOG, "t", S, E, ["missing"]) == []


def test_window_edges_are_half_open_and_an_ambiguous_change_is_refused():
    edge = [change(1, "put", "s", [put("n", 1, 1)], t=S), change(2, "put", "e", [put("n", 1, 1)], t=E)]
    edge[1]["t_after_ms"] = E
    assert [r[0] for r in er.multi_version_rows(edge, "t", S, E) if r[4] == "DR"] == ["s"]
    across = [change(1, "put", "x", [put("n", 1, 1)], t=E - 2)]
    with pytest.raises(er.AmbiguousWindow):
        er.multi_version_rows(across, "t", S, E)


def test_csv_lines_follow_osswriter():
    cases = [
        (["1", "alice"], "1,alice\n"),
        (["  x  ", "y"], "x,y\n"),
        (["a,b", 'c"d'], '"a,b","c""d"\n'),
        (["line1\nline2", "z"], '"line1\nline2",z\n'),
        (["", "x"], '"",x\n'),
        (["x", ""], "x,\n"),
        (["#tag", "#tag"], '"#tag",#tag\n'),
        (["a\rb"], "a\rb\n"),
        (["\\N"], "\\N\n"),
    ]
    for fields, line in cases:
        assert er.csv_line(fields) == line
    # writer-oss keeps whitespace and quotes a CR.
    assert er.csv_line(["  x  ", "a\rb"], **er.STREAMPORT_CSV) == '  x  ,"a\rb"\n'


def test_values_render_as_datax_text():
    assert [er.datax_text(v) for v in (None, True, 42, -7, "s", b"\xe4\xb8\xad")] == [
        "null", "true", "42", "-7", "s", "中"]
    table = {3.0: "3.0", 0.30000000000000004: "0.30000000000000004", 1234567.0: "1234567.0",
             1e7: "10000000", 12345678.9: "12345678.9", 1e-5: "0.000010", 1.234e-5: "0.00001234",
             -2.5: "-2.5", 0.0: "0.0"}
    for d, text in table.items():
        assert er.java_double_plain(d) == text, d


def test_person_rows_are_strings_with_a_null_sequence_info():
    rows = er.odps_person_rows(LOG, "t", S, E)
    assert rows[2] == ["a", "age", 12, "30", "U", None]
    assert rows[3] == ["a", "score", 13, "2.5", "U", None]
    assert rows[9] == ["c", "avatar", 14, "img", "U", None]
    assert all(r[5] is None for r in rows) and len(rows) == 12


def test_sequence_info_shape_counts_lines_per_record():
    shape = er.sequence_info_shape(LOG, "t", S, E)
    assert [(r, i) for r, i, _, _ in shape] == [
        (0, 0), (0, 1), (0, 2), (0, 0), (0, 1), (0, 2), (0, 0), (0, 0), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert er.SEQUENCE_INFO.match("0000000001_00001705307400000123_0000000000_shard-a:0000000001")

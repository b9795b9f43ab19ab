"""What writer-odps's commit markers need of MaxCompute, through pyodps 0.13.2:
a table partitioned by (fingerprint, target_table, upload_id, state) created with
IF NOT EXISTS, partitions added with ADD IF NOT EXISTS, listed by a prefix of their
keys (`iterate_partitions(spec=…)` sends `partition=k='v',…`), and an upload
session's status after its commit (CLOSED), until it expires (then any call on it
is refused: whether it committed can no longer be learned).
"""

import pytest
from odps import errors
from odps.tunnel import TableTunnel
from odps.tunnel.errors import TunnelError

from odps_helpers import client, dump, unique

KEYS = "fingerprint string, target_table string, upload_id string, state string"


def test_marker_partitions_are_added_once_and_listed_by_prefix(localcloud, admin):
    o = client(localcloud)
    name = unique("markers")
    for _ in range(2):
        o.execute_sql(f"create table if not exists {name} (note string) partitioned by ({KEYS})")
    marker = "fingerprint='f1',target_table='t',upload_id='2024abc',state='{}'"
    for state in ("intent", "intent", "committed"):
        o.execute_sql(f"alter table {name} add if not exists partition ({marker.format(state)})")
    o.execute_sql(
        f"alter table {name} add if not exists partition "
        "(fingerprint='f2',target_table='t',upload_id='2024def',state='intent')"
    )
    table = o.get_table(name)
    window = [
        str(p.partition_spec) for p in table.partitions.iterate_partitions(spec="fingerprint='f1',target_table='t'")
    ]
    assert sorted(window) == [marker.format("committed"), marker.format("intent")]
    assert len(list(table.partitions)) == 3
    assert dump(admin, name)[
        "fingerprint=f1,target_table=t,upload_id=2024abc,state=committed"
    ] == []


def test_committed_session_reads_closed_until_it_expires(localcloud, admin):
    o = client(localcloud)
    name = unique("closed")
    o.execute_sql(f"create table {name} (id bigint) partitioned by (pt string)")
    tunnel = TableTunnel(o)
    session = tunnel.create_upload_session(name, partition_spec="pt=1", create_partition=True)
    with session.open_record_writer(0) as w:
        w.write(session.new_record([1]))
    session.commit([0])
    assert session.status == session.Status.Closed
    again = tunnel.create_upload_session(name, partition_spec="pt=1", upload_id=session.id)
    assert again.status == again.Status.Closed
    assert dump(admin, name) == {"pt=1": [[1]]}
    # 24 h after its creation the session is gone for every call, committed or not.
    admin["odps"].post(f"/-/odps/uploads/{session.id}/age", {"age_ms": 24 * 3600 * 1000})
    with pytest.raises((errors.ODPSError, TunnelError), match="expired"):
        again.reload()
    assert dump(admin, name) == {"pt=1": [[1]]}

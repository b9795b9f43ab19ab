#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from the crates' test
vectors and example files. Run from the repository root: python3 fuzz/seeds/make.py.
The seeds are kept in the repository; this script only documents where they came
from and recreates them."""

import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = ROOT / "fuzz" / "seeds"


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def vectors(path):
    return {v["name"]: bytes.fromhex(v["hex"]) for v in json.loads((ROOT / path).read_text())["vectors"] if "hex" in v}


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


# ---- job files, data sources ---------------------------------------------------
for f in sorted((ROOT / "examples" / "jobs").glob("*.json")) + [ROOT / "examples" / "stream.json"]:
    write("job_file", f.name, f.read_bytes())
for f in sorted((ROOT / "engine" / "testdata").glob("*.json")):
    write("job_file", "engine-" + f.name, f.read_bytes())
write("job_file", "configuration.json", """{"type": "job", "version": "2.0",
  "Configuration ": {"reader": {"plugin": "otsstream", "parameter": {"date": "${day}", "at": "$[yyyymmddhh24miss-10/24/60]"}},
  "writer": {"plugin": "odps", "parameter": {"datasource": "ds", "n": ${n}}},
  "Setting ": {"Speed ": {"concurrent": 2, "mbps": 1}, "errorLimit": {"record": 0}, "timeZone": "America/New_York"}}}""")
write("job_file", "steps.json", """// steps form
{"type": "job", "steps": [{"stepType": "stream", "category": "reader", "parameter": {"q": "$q"}},
  /* writer */ {"stepType": "stream", "category": "writer", "name": "w", "parameter": null,},],
 "setting": {"speed": {"channel": "3", "byte": 1048576}, "postTimeoutSeconds": 30}, "order": {}}""")
for f in [ROOT / "examples" / "datasources.json", ROOT / "examples" / "datasources.aliyun.json"]:
    write("datasources", f.name, f.read_bytes())
write("datasources", "env.json", '{"ds": {"endpoint": "http://x", "accessKey": "${env:STREAMPORT_FUZZ_SET}", "list": ["${env:HOME}x", {"k": "a${env:STREAMPORT_FUZZ_SET}b"}]}, "other": 1,}')

# ---- expressions: [zone][u32 le seconds][expression "\n" -p value] ------------------
EXPRESSIONS = [
    ("yyyymmdd-1", "$bizdate"),
    ("yyyymmddhh24miss-10/24/60", "${yyyymmdd-7*2}"),
    ("add_months(yyyymm,-1)", "$[add_months(yyyymmdd,-12*1)]"),
    ("yyyy-mm-dd hh24:mi:ss+1/24", "a$$b$cyctime-$gmtdate"),
    ("YYYY/MM/DD_hh.mi.ss-7*3", "${bdp.system.bizdate}/${bdp.system.cyctime}"),
    ("hh24mm", '"quoted", {"x": 1}'),
    ("yyyymmdd-l", "${yyyy-1}"),
    ("yy+99999999999", "$bizmonth"),
]
for i, (expr, value) in enumerate(EXPRESSIONS):
    # 2024-03-10 07:30 UTC and friends: around the New York DST change.
    seconds = (1710055800 + i * 86400 * 17 + 3_000_000_000) // 2
    write("expressions", f"seed-{i}", bytes([i]) + struct.pack("<I", seconds) + f"{expr}\n{value}".encode())

# ---- jsonl -------------------------------------------------------------------------
write("jsonl_records", "typed.jsonl", "\n".join([
    '[null,7,1.0,{"double":"-Infinity"},{"decimal":"1.50"},{"bytes":"AAEC"},{"date":"2024-01-15T08:30:00.123Z"},"a\\"b"]',
    '',
    '[true,false,-9223372036854775808,1e308,{"date":-62198755200001},{"double":"NaN"}]',
    '[1, {"x": 1}]',
    '[]',
]) + "\n")
write("jsonl_records", "crlf.jsonl", '["a"]\r\n[1.5e-8]\r\n  \r\n[{"date":"2024-01-15T08:30:00+08:00"}]')

# ---- OSS answers -----------------------------------------------------------------
write("oss_responses", "list.xml", """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>b</Name><Prefix>p%2F</Prefix><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>
<IsTruncated>true</IsTruncated><NextContinuationToken>t%3D1</NextContinuationToken>
<Contents><Key>p%2Fa__0123456789abcdef0123456789abcdef.csv</Key><Size>3</Size></Contents>
<Contents><Key>p%2F%E4%B8%AD&amp;x</Key><Size>0</Size></Contents><KeyCount>2</KeyCount></ListBucketResult>""")
write("oss_responses", "uploads.xml", """<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
<NextKeyMarker>p%2Fb</NextKeyMarker><NextUploadIdMarker>0004B9</NextUploadIdMarker><IsTruncated>true</IsTruncated>
<Upload><Key>p%2Fa</Key><UploadId>0004B999EF518A1FE585B0C9360DC4C8</UploadId></Upload>
<Upload><Key><![CDATA[p/b]]></Key><UploadId>0004B999EF5A239BB9138C6227D6</UploadId></Upload></ListMultipartUploadsResult>""")
write("oss_responses", "initiate.xml", '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>0004B9894A22E5B1888A1E29F823</UploadId></InitiateMultipartUploadResult>')
write("oss_responses", "error.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><RequestId>5C3D9175B6FC201293AD</RequestId><HostId>b.oss.example</HostId><EC>0042-00000002</EC></Error>')
write("oss_responses", "delete.xml", '<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Deleted><Key>a&lt;b</Key></Deleted></DeleteResult>')

# ---- MaxCompute answers -------------------------------------------------------------
schema = json.dumps({"columns": [{"name": "id", "type": "bigint"}, {"name": "s", "type": "varchar(10)"}, {"name": "d", "type": "decimal(10,2)"}],
                     "partitionKeys": [{"name": "pt", "type": "string"}], "isVirtualView": False})
write("odps_responses", "table.xml", f'<?xml version="1.0" encoding="UTF-8"?><Table><Name>t</Name><Type>MANAGED_TABLE</Type><Schema><![CDATA[{schema}]]></Schema></Table>')
write("odps_responses", "partitions.xml", '<?xml version="1.0" encoding="UTF-8"?><Partitions><Marker>m1</Marker><MaxItems>1000</MaxItems><Partition><Column Name="pt" Value="20240301"/><Column Name="h" Value="a&amp;b"/></Partition></Partitions>')
write("odps_responses", "instance.xml", '<?xml version="1.0" encoding="UTF-8"?><Instance><Status>Terminated</Status><Tasks><Task Type="SQL"><Name>datax_odpswriter_x</Name><Status>Success</Status><Result><![CDATA[ok]]></Result></Task></Tasks></Instance>')
write("odps_responses", "session.json", json.dumps({"UploadID": "2024030112345", "Status": "normal", "Schema": json.loads(schema),
                                                      "UploadedBlockList": [{"BlockID": 0, "Version": 1}, {"BlockID": 4294967296}, {"BlockID": 7}]}))
write("odps_responses", "error.json", '{"Code": "NoSuchUpload", "Message": "upload not found", "RequestId": "abc"}')
write("odps_responses", "error.xml", '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchObject</Code><Message><![CDATA[table not found]]></Message><RequestId>r1</RequestId></Error>')
write("odps_responses", "types.txt", "decimal(38,18)\nvarchar(65535)")

# ---- Tablestore answers: [which][protobuf] ----------------------------------------------
pb = vectors("reader-otsstream/testdata/protobuf.json")
plain = vectors("reader-otsstream/testdata/plainbuffer.json")
WHICH = {"list_stream_response": 0, "describe_stream_response_split_child": 1, "describe_stream_response_merge_paged": 1,
         "get_shard_iterator_response": 2, "describe_table_response": 3, "describe_table_response_with_table_status": 3,
         "error_trimmed": 7, "get_stream_record_response": 8, "get_stream_record_response_shard_end": 8}
for name, which in WHICH.items():
    write("ots_responses", name, bytes([which]) + pb[name])
rows = plain["stream_record_put"] + plain["stream_record_update"][4:]
write("ots_responses", "get_range_response", bytes([4]) + field(2, 2, rows) + field(3, 2, plain["primary_key_only"]))
write("ots_responses", "get_row_response", bytes([5]) + field(2, 2, plain["put_row_request"]))

# ---- localcloud requests -----------------------------------------------------------------
def action(index, body):
    return bytes([index]) + struct.pack(">H", len(body)) + body

condition = field(3, 2, field(1, 0, varint(0)))
put = field(1, 2, b"t") + field(2, 2, plain["put_row_request"]) + condition
update = field(1, 2, b"t") + field(2, 2, plain["update_row_request"]) + condition
delete = field(1, 2, b"t") + field(2, 2, plain["delete_row_request"]) + condition
get_range = (field(1, 2, b"t") + field(2, 0, varint(0)) + field(5, 0, varint(1))
             + field(7, 2, plain["primary_key_only"]) + field(8, 2, plain["primary_key_only"]))
list_stream = field(1, 2, b"t")
write("localcloud_requests", "ots-put-update-delete", bytes([0]) + action(0, put) + action(1, update) + action(6, get_range) + action(2, delete))
write("localcloud_requests", "ots-put-stream", bytes([0]) + action(0, put) + action(7, list_stream) + action(11, list_stream))
for name in ["block_basic.json", "block_types2.json"]:
    block = json.loads((ROOT / "writer-odps" / "testdata" / name).read_text())
    cols = [c["type"] for c in block["table_columns"]]
    TYPES = ["bigint", "string", "double", "boolean", "datetime", "decimal(10,2)", "int", "float", "timestamp", "binary",
             "varchar(5)", "array<bigint>", "map<string,int>", "struct<a:int,b:string>", "date", "tinyint"]
    picks = bytes(TYPES.index(c) if c in TYPES else TYPES.index("decimal(10,2)") for c in cols)
    write("localcloud_requests", "odps-" + name, bytes([1, len(cols) - 1, 7]) + picks + bytes.fromhex(block["block_hex"]))
write("localcloud_requests", "text-type", b"\x02map<string,array<struct<a:int,b:decimal(10,2)>>>")
write("localcloud_requests", "text-sql", b"\x02INSERT OVERWRITE TABLE t PARTITION (pt='1') SELECT * FROM s WHERE a = 'x''y';")
write("localcloud_requests", "text-plainbuffer", b"\x02" + plain["put_row_request"])
write("localcloud_requests", "oss-delete", b'\x03<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>')
write("localcloud_requests", "oss-complete", b'\x03<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"3858F62230AC3C915F300C664312C11F"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>')

# ---- the two older targets --------------------------------------------------------------------
for f in sorted((ROOT / "protocol" / "testdata" / "golden").glob("*.hex")):
    write("frame_decoder", f.stem, b"\x40" + bytes.fromhex(f.read_text().split()[0] if len(f.read_text().split()) == 1 else "".join(f.read_text().split())))
for name, which in [("get_stream_record_response", 1)]:
    write("service_responses", name, bytes([which]) + pb[name])
for name, data in plain.items():
    write("service_responses", "plainbuffer-" + name, b"\x00" + data)
write("service_responses", "schema", b"\x02" + schema.encode())
write("service_responses", "type", b"\x03map<string,array<int>>")

"""OSS objects through oss2 and alibabacloud-oss-v2: put, get (range), head, delete,
batch delete, append, forbid-overwrite, Content-MD5 and CRC-64."""

import base64
import hashlib

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from oss_helpers import *  # noqa: F401,F403
from oss_helpers import oss2_bucket


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_put_get_head_delete_oss2(bucket, prefix):
    key = prefix + "datax/a b+c 测试.csv"
    body = b"id,name\n1,alice\n"
    put = bucket.put_object(key, body, headers={"Content-Type": "text/csv", "x-oss-meta-source": "DataX"})
    assert put.status == 200
    assert put.etag == hashlib.md5(body).hexdigest().upper()
    assert put.crc == 8350708161872689427  # crc64.json vector for this body

    got = bucket.get_object(key)
    assert got.read() == body
    assert got.headers["Content-Type"] == "text/csv"
    assert got.headers["x-oss-meta-source"] == "DataX"
    assert got.headers["x-oss-object-type"] == "Normal"
    assert got.server_crc == got.client_crc == put.crc

    head = bucket.head_object(key)
    assert head.content_length == len(body)
    assert head.object_type == "Normal"
    assert head.etag == put.etag
    assert head.server_crc == put.crc

    assert bucket.delete_object(key).status == 204
    assert not bucket.object_exists(key)
    # Deleting a missing key succeeds.
    assert bucket.delete_object(key).status == 204
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(key)


def test_get_with_range(bucket, client, bucket_name, prefix):
    key = prefix + "range.bin"
    body = bytes(range(256)) * 4
    bucket.put_object(key, body)
    part = bucket.get_object(key, byte_range=(10, 19))
    assert part.status == 206
    assert part.read() == body[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    tail = bucket.get_object(key, byte_range=(1000, None))
    assert tail.read() == body[1000:]
    r = client.get_object(oss.GetObjectRequest(bucket=bucket_name, key=key, range_header="bytes=-5"))
    assert r.body.read() == body[-5:]
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.get_object(key, byte_range=(5000, 6000))
    assert err.value.status == 416 and err.value.code == "InvalidRange"


def test_head_missing_key_has_no_body_but_x_oss_err(bucket, client, bucket_name, prefix):
    with pytest.raises(oss2.exceptions.NotFound) as err:
        bucket.head_object(prefix + "missing")
    assert err.value.status == 404
    with pytest.raises(oss.exceptions.OperationError) as err2:
        client.head_object(oss.HeadObjectRequest(bucket=bucket_name, key=prefix + "missing"))
    assert err2.value.unwrap().code == "NoSuchKey"


def test_put_get_v2_sdk_with_crc(client, bucket_name, prefix):
    key = prefix + "v2/obj.txt"
    body = b"hello world"
    put = client.put_object(oss.PutObjectRequest(bucket=bucket_name, key=key, body=body))
    assert put.status_code == 200
    assert put.hash_crc64 == "5981764153023615706"
    got = client.get_object(oss.GetObjectRequest(bucket=bucket_name, key=key))
    assert got.body.read() == body
    assert got.hash_crc64 == put.hash_crc64
    head = client.head_object(oss.HeadObjectRequest(bucket=bucket_name, key=key))
    assert head.content_length == len(body)
    client.delete_object(oss.DeleteObjectRequest(bucket=bucket_name, key=key))
    assert not client.is_object_exist(bucket_name, key)


def test_wrong_content_md5_is_invalid_digest(bucket, prefix):
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_object(prefix + "md5", b"abc", headers={"Content-MD5": md5_b64(b"abd")})
    assert err.value.status == 400 and err.value.code == "InvalidDigest"
    ok = bucket.put_object(prefix + "md5", b"abc", headers={"Content-MD5": md5_b64(b"abc")})
    assert ok.status == 200


def test_batch_delete(bucket, client, bucket_name, prefix):
    keys = [prefix + f"batch/{i} x+y" for i in range(5)]
    for k in keys:
        bucket.put_object(k, b"x")
    result = bucket.batch_delete_objects(keys[:3] + [prefix + "never-existed"])
    assert sorted(result.deleted_keys) == sorted(keys[:3] + [prefix + "never-existed"])
    remaining = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix + "batch/")]
    assert remaining == keys[3:]
    r = client.delete_multiple_objects(
        oss.DeleteMultipleObjectsRequest(
            bucket=bucket_name,
            objects=[oss.DeleteObject(key=k) for k in keys[3:]],
            quiet=True,
        )
    )
    assert r.status_code == 200
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix + "batch/")] == []


def test_batch_delete_requires_content_md5(bucket, bucket_name):
    """oss2's batch_delete_objects always sends Content-MD5; without it OSS answers
    MissingArgument. Sent here through oss2's own signed-request path."""
    body = b"<Delete><Quiet>true</Quiet><Object><Key>k</Key></Object></Delete>"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket._do("POST", bucket_name, "", data=body, params={"delete": ""})
    assert err.value.status == 400 and err.value.code == "MissingArgument"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket._do("POST", bucket_name, "", data=body, params={"delete": ""},
                   headers={"Content-MD5": md5_b64(b"other")})
    assert err.value.code == "InvalidDigest"


def test_append_object_chains_crc(bucket, client, bucket_name, prefix):
    key = prefix + "append.log"
    first = bucket.append_object(key, 0, b"id,name\n1,alice\n", init_crc=0)
    assert first.next_position == 16
    assert first.crc == 8350708161872689427
    second = bucket.append_object(key, first.next_position, b"2,bob\n3,carol\n", init_crc=first.crc)
    assert second.next_position == 30
    assert second.crc == 12485279618650830826  # crc64.json append_chain
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as err:
        bucket.append_object(key, 3, b"late")
    assert err.value.next_position == 30
    head = bucket.head_object(key)
    assert head.object_type == "Appendable"
    assert head.headers["x-oss-next-append-position"] == "30"
    assert bucket.get_object(key).read() == b"id,name\n1,alice\n2,bob\n3,carol\n"
    r = client.append_object(
        oss.AppendObjectRequest(bucket=bucket_name, key=key, position=30, body=b"4,dan\n")
    )
    assert r.next_position == 36
    bucket.put_object(prefix + "normal", b"n")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object(prefix + "normal", 1, b"x")


def test_forbid_overwrite(bucket, client, bucket_name, prefix):
    key = prefix + "once"
    headers = {"x-oss-forbid-overwrite": "true"}
    bucket.put_object(key, b"first", headers=headers)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_object(key, b"second", headers=headers)
    assert err.value.status == 409 and err.value.code == "FileAlreadyExists"
    with pytest.raises(oss.exceptions.OperationError) as err2:
        client.put_object(oss.PutObjectRequest(bucket=bucket_name, key=key, body=b"third", forbid_overwrite=True))
    assert err2.value.unwrap().code == "FileAlreadyExists"
    assert bucket.get_object(key).read() == b"first"
    bucket.put_object(key, b"overwritten", headers={"x-oss-forbid-overwrite": "false"})
    assert bucket.get_object(key).read() == b"overwritten"


def test_crc_is_listed_by_control_route(admin, bucket, bucket_name, prefix):
    key = prefix + "crc"
    put = bucket.put_object(key, b"123456789")
    listed = admin["oss"].get(f"/-/oss/buckets/{bucket_name}")
    entry = next(o for o in listed["objects"] if o["key"] == key)
    assert int(entry["crc64"]) == put.crc == 0x995DC9BBDF1939FA


def test_missing_bucket(localcloud):
    b = oss2_bucket(localcloud, name="no-such-bucket-here")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()


def test_chunked_body_and_expect_continue(bucket, bucket_name, prefix):
    """oss2 sends a generator as a chunked body; the Java SDK sends Expect: 100-continue."""
    chunks = [b"id,name\n", b"1,alice\n", b"2,bob\n"]
    r = bucket.put_object(prefix + "chunked", (c for c in chunks))
    expected = oss2.utils.Crc64()
    expected.update(b"".join(chunks))
    assert r.crc == expected.crc
    assert bucket.get_object(prefix + "chunked").read() == b"".join(chunks)
    body = b"x" * 5000
    req = oss2.http.Request("PUT", bucket._make_url(bucket_name, prefix + "expect"), data=body,
                            headers={"Expect": "100-continue"})
    bucket.auth._sign_request(req, bucket_name, prefix + "expect")
    assert bucket.session.do_request(req, timeout=10).status == 200
    assert bucket.get_object(prefix + "expect").read() == body


def test_object_meta_and_overrides(bucket, prefix):
    key = prefix + "meta.txt"
    bucket.put_object(key, b"abc", headers={"Cache-Control": "no-cache", "Content-Disposition": "inline"})
    meta = bucket.get_object_meta(key)
    assert meta.content_length == 3
    got = bucket.get_object(key, params={"response-content-type": "text/x-test"})
    assert got.headers["Content-Type"] == "text/x-test"
    assert got.headers["Cache-Control"] == "no-cache"
    assert got.headers["Content-Disposition"] == "inline"
    got.read()

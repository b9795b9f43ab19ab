"""OSS multipart uploads through both SDKs: three parts with CRC-64 checks, abort,
list parts, list uploads, invisibility until Complete, Complete's checks."""

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from oss2.models import PartInfo

from oss_helpers import *  # noqa: F401,F403

PART = 100 * 1024  # the minimum size of a non-last part


def part_bytes(n, size=PART):
    return bytes((i * 31 + n) % 251 for i in range(size))


def test_three_parts_with_crc_oss2(admin, bucket, bucket_name, prefix):
    key = prefix + "big.csv"
    upload_id = bucket.init_multipart_upload(key, headers={"Content-Type": "text/csv"}).upload_id
    bodies = [part_bytes(1), part_bytes(2), b"tail"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        r = bucket.upload_part(key, upload_id, number, body)  # oss2 checks the part CRC
        parts.append(PartInfo(number, r.etag, size=len(body), part_crc=r.crc))

    # Open uploads are invisible to GET, HEAD and listings.
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(key)
    assert not bucket.object_exists(key)
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix)] == []
    opened = admin["oss"].get("/-/oss/uploads")["uploads"]
    mine = next(u for u in opened if u["upload_id"] == upload_id)
    assert mine["key"] == key and [p["part_number"] for p in mine["parts"]] == [1, 2, 3]

    listed = bucket.list_parts(key, upload_id)
    assert [p.part_number for p in listed.parts] == [1, 2, 3]
    assert [p.size for p in listed.parts] == [len(b) for b in bodies]
    assert [p.etag for p in listed.parts] == [p.etag for p in parts]
    assert upload_id in [u.upload_id for u in bucket.list_multipart_uploads(prefix=prefix).upload_list]

    # oss2 combines the part CRCs and compares with x-oss-hash-crc64ecma.
    done = bucket.complete_multipart_upload(key, upload_id, parts)
    assert done.status == 200 and done.crc is not None
    got = bucket.get_object(key)
    assert got.read() == b"".join(bodies)
    assert got.server_crc == done.crc
    head = bucket.head_object(key)
    assert head.object_type == "Multipart"
    assert head.content_type == "text/csv"
    assert head.etag.endswith("-3")
    assert upload_id not in [u["upload_id"] for u in admin["oss"].get("/-/oss/uploads")["uploads"]]
    # Completing again: the upload is gone.
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.complete_multipart_upload(key, upload_id, parts)


def test_list_parts_paging(bucket, prefix):
    key = prefix + "paged"
    upload_id = bucket.init_multipart_upload(key).upload_id
    for n in range(1, 6):
        bucket.upload_part(key, upload_id, n, b"p%d" % n)
    first = bucket.list_parts(key, upload_id, max_parts=2)
    assert first.is_truncated and [p.part_number for p in first.parts] == [1, 2]
    rest = bucket.list_parts(key, upload_id, marker=first.next_marker, max_parts=10)
    assert not rest.is_truncated and [p.part_number for p in rest.parts] == [3, 4, 5]
    bucket.abort_multipart_upload(key, upload_id)


def test_abort(admin, bucket, prefix):
    key = prefix + "aborted"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"x")
    assert bucket.abort_multipart_upload(key, upload_id).status == 204
    assert upload_id not in [u["upload_id"] for u in admin["oss"].get("/-/oss/uploads")["uploads"]]
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part(key, upload_id, 2, b"y")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload(key, upload_id)
    assert not bucket.object_exists(key)


def test_complete_checks(bucket, prefix):
    key = prefix + "checks"
    upload_id = bucket.init_multipart_upload(key).upload_id
    small = bucket.upload_part(key, upload_id, 1, b"small")
    big = bucket.upload_part(key, upload_id, 2, part_bytes(2))
    # oss2 sorts the parts it sends, so the out-of-order body goes through its raw path.
    body = ("<CompleteMultipartUpload>"
            f"<Part><PartNumber>2</PartNumber><ETag>\"{big.etag}\"</ETag></Part>"
            f"<Part><PartNumber>1</PartNumber><ETag>\"{small.etag}\"</ETag></Part>"
            "</CompleteMultipartUpload>")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket._do("POST", bucket.bucket_name, key, data=body, params={"uploadId": upload_id})
    assert err.value.code == "InvalidPartOrder"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket._do("POST", bucket.bucket_name, key, data="<CompleteMultipartUpload><Part>", params={"uploadId": upload_id})
    assert err.value.code == "MalformedXML"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, "0" * 32)])
    assert err.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, small.etag), PartInfo(2, big.etag)])
    assert err.value.status == 400 and err.value.code == "EntityTooSmall"
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.upload_part(key, upload_id, 10001, b"x")
    assert err.value.code == "InvalidArgument"
    # Gaps are fine, and the last part may be small.
    ok = bucket.complete_multipart_upload(key, upload_id, [PartInfo(2, big.etag)])
    assert ok.status == 200
    assert bucket.get_object(key).read() == part_bytes(2)


def test_empty_part_list_makes_an_empty_object(bucket, prefix):
    key = prefix + "empty"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.complete_multipart_upload(key, upload_id, [])
    head = bucket.head_object(key)
    assert head.content_length == 0 and head.object_type == "Multipart"
    assert head.server_crc == 0


def test_forbid_overwrite_at_complete(bucket, prefix):
    key = prefix + "exists"
    bucket.put_object(key, b"already")
    upload_id = bucket.init_multipart_upload(key, headers={"x-oss-forbid-overwrite": "true"}).upload_id
    r = bucket.upload_part(key, upload_id, 1, b"new")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r.etag)])
    assert err.value.status == 409 and err.value.code == "FileAlreadyExists"
    assert bucket.get_object(key).read() == b"already"


def test_three_parts_v2_sdk(client, bucket_name, prefix):
    key = prefix + "v2-big"
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket_name, key=key))
    bodies = [part_bytes(7), part_bytes(8), b"last part"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        r = client.upload_part(oss.UploadPartRequest(bucket=bucket_name, key=key, upload_id=init.upload_id, part_number=number, body=body))
        parts.append(oss.UploadPart(part_number=number, etag=r.etag))
    listed = client.list_parts(oss.ListPartsRequest(bucket=bucket_name, key=key, upload_id=init.upload_id))
    assert [p.part_number for p in listed.parts] == [1, 2, 3]
    done = client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=bucket_name, key=key, upload_id=init.upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
    assert done.status_code == 200
    got = client.get_object(oss.GetObjectRequest(bucket=bucket_name, key=key))
    assert got.body.read() == b"".join(bodies)
    assert got.hash_crc64 == done.hash_crc64


def test_uploader_v2_sdk(client, bucket_name, prefix):
    """The v2 SDK's uploader splits into parts and checks the combined CRC-64."""
    key = prefix + "uploaded"
    data = part_bytes(3, 350 * 1024)
    uploader = client.uploader(part_size=PART)
    import io
    r = uploader.upload_from(oss.PutObjectRequest(bucket=bucket_name, key=key), io.BytesIO(data))
    assert r.status_code == 200
    head = client.head_object(oss.HeadObjectRequest(bucket=bucket_name, key=key))
    assert head.object_type == "Multipart" and head.content_length == len(data)


def test_list_multipart_uploads_paging(bucket, prefix):
    ids = []
    for key in ["a/1", "a/2", "b", "c", "c"]:
        ids.append((prefix + key, bucket.init_multipart_upload(prefix + key).upload_id))
    listed = [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket, prefix=prefix, max_uploads=2)]
    assert listed == sorted(ids)
    page = bucket.list_multipart_uploads(prefix=prefix, delimiter="/")
    assert page.prefix_list == [prefix + "a/"]
    assert [u.key for u in page.upload_list] == [prefix + "b", prefix + "c", prefix + "c"]
    for key, upload_id in ids:
        bucket.abort_multipart_upload(key, upload_id)
    assert bucket.list_multipart_uploads(prefix=prefix).upload_list == []


def test_oss2_resumable_upload_and_download(bucket, prefix, tmp_path):
    """oss2's resumable helpers: parts uploaded by several threads and checked by the
    combined CRC-64; ranged downloads checked against the whole object's CRC-64."""
    data = part_bytes(9, 450 * 1024)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    key = prefix + "resumable.bin"
    oss2.resumable_upload(bucket, key, str(source), multipart_threshold=PART, part_size=PART,
                          num_threads=3, store=oss2.ResumableStore(root=str(tmp_path)))
    head = bucket.head_object(key)
    assert head.object_type == "Multipart" and head.content_length == len(data)
    target = tmp_path / "target.bin"
    oss2.resumable_download(bucket, key, str(target), multiget_threshold=PART, part_size=PART,
                            num_threads=3, store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert target.read_bytes() == data

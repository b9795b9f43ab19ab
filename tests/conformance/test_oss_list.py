"""OSS listings through both SDKs: ListObjects (v1) and ListObjectsV2 with prefix,
delimiter, paging over more than 1,000 keys, and encoding-type=url."""

from concurrent.futures import ThreadPoolExecutor

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from oss_helpers import *  # noqa: F401,F403
from oss_helpers import oss2_bucket, unique

MANY = 1105


@pytest.fixture(scope="module")
def many_keys(localcloud):
    """MANY objects under one prefix, plus a few "directories" (written once per module)."""
    bucket = oss2_bucket(localcloud)
    prefix = unique("many")
    keys = [prefix + f"k{i:05d}" for i in range(MANY)]
    dirs = [prefix + f"dir{d}/x{j}" for d in range(3) for j in range(2)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: bucket.put_object(k, k.encode()), keys + dirs))
    return prefix, keys, dirs


def test_list_v1_pages_over_1000_keys(bucket, many_keys):
    prefix, keys, dirs = many_keys
    listed = [o.key for o in oss2.ObjectIterator(bucket, prefix=prefix, max_keys=1000)]
    assert listed == sorted(keys + dirs)
    first = bucket.list_objects(prefix=prefix, max_keys=1000)
    assert first.is_truncated and len(first.object_list) == 1000
    second = bucket.list_objects(prefix=prefix, marker=first.next_marker, max_keys=1000)
    assert not second.is_truncated
    assert len(first.object_list) + len(second.object_list) == len(keys + dirs)
    assert first.object_list[0].size == len(first.object_list[0].key.encode())


def test_list_v1_with_delimiter(bucket, many_keys):
    prefix, keys, dirs = many_keys
    page = bucket.list_objects(prefix=prefix, delimiter="/", max_keys=1000)
    assert page.prefix_list == [prefix + f"dir{d}/" for d in range(3)]
    entries = [o.key for o in oss2.ObjectIterator(bucket, prefix=prefix, delimiter="/", max_keys=7)]
    # Directories and keys, each exactly once, in key order.
    assert entries == sorted(keys + [prefix + f"dir{d}/" for d in range(3)])


def test_list_v2_pages_over_1000_keys(bucket, many_keys):
    prefix, keys, dirs = many_keys
    listed = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, max_keys=1000)]
    assert listed == sorted(keys + dirs)
    first = bucket.list_objects_v2(prefix=prefix, max_keys=1000)
    assert first.is_truncated and first.next_continuation_token
    second = bucket.list_objects_v2(prefix=prefix, continuation_token=first.next_continuation_token, max_keys=1000)
    assert not second.is_truncated
    assert first.object_list[-1].key < second.object_list[0].key
    assert len(first.object_list) + len(second.object_list) == len(keys) + len(dirs)


def test_list_v2_delimiter_and_start_after(bucket, many_keys):
    prefix, keys, dirs = many_keys
    page = bucket.list_objects_v2(prefix=prefix, delimiter="/", max_keys=1000)
    assert page.prefix_list == [prefix + f"dir{d}/" for d in range(3)]
    after = bucket.list_objects_v2(prefix=prefix, start_after=keys[-3], max_keys=1000)
    assert [o.key for o in after.object_list] == keys[-2:]


def test_list_v2_with_v2_sdk_paginator(client, bucket_name, many_keys):
    prefix, keys, dirs = many_keys
    paginator = client.list_objects_v2_paginator()
    listed, pages = [], 0
    for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=bucket_name, prefix=prefix, max_keys=500)):
        pages += 1
        listed.extend(o.key for o in page.contents or [])
    assert pages == 3
    assert listed == sorted(keys + dirs)
    r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket_name, prefix=prefix, delimiter="/", max_keys=1000))
    assert [p.prefix for p in r.common_prefixes] == [prefix + f"dir{d}/" for d in range(3)]
    assert r.key_count == 1000 and r.is_truncated  # max-keys caps keys + common prefixes


def test_list_v1_with_v2_sdk(client, bucket_name, many_keys):
    prefix, keys, _ = many_keys
    r = client.list_objects(oss.ListObjectsRequest(bucket=bucket_name, prefix=prefix, max_keys=10))
    assert r.is_truncated
    expected = sorted(keys + many_keys[2])
    assert [o.key for o in r.contents] == expected[:10]
    r2 = client.list_objects(oss.ListObjectsRequest(bucket=bucket_name, prefix=prefix, marker=r.next_marker, max_keys=10))
    assert [o.key for o in r2.contents] == expected[10:20]


def test_url_encoding_of_odd_keys(bucket, client, bucket_name, prefix):
    odd = [prefix + "a b", prefix + "a+b", prefix + "测试/x", prefix + "ctl\x01key", prefix + "pct%2F"]
    for k in odd:
        bucket.put_object(k, b"v")
    # oss2 asks for encoding-type=url on v2 listings and decodes the keys.
    assert sorted(o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix)) == sorted(odd)
    r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket_name, prefix=prefix, encoding_type="url"))
    assert sorted(o.key for o in r.contents) == sorted(odd)
    page = bucket.list_objects_v2(prefix=prefix, delimiter="/")
    assert page.prefix_list == [prefix + "测试/"]


def test_invalid_max_keys(bucket, prefix):
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.list_objects(prefix=prefix, max_keys=1001)
    assert err.value.status == 400 and err.value.code == "InvalidArgument"


def test_bucket_info_location_acl(bucket, client, bucket_name):
    info = bucket.get_bucket_info()
    assert info.name == bucket_name
    assert info.location == "oss-cn-hangzhou"
    assert bucket.get_bucket_location().location == "oss-cn-hangzhou"
    assert bucket.get_bucket_acl().acl == "private"
    r = client.get_bucket_info(oss.GetBucketInfoRequest(bucket=bucket_name))
    assert r.bucket_info.name == bucket_name


def test_create_and_delete_bucket(localcloud, admin):
    service = oss2.Service(oss2.Auth(localcloud["access_key_id"], localcloud["access_key_secret"]), localcloud["oss"]["endpoint"])
    name = "b-" + unique("x").strip("/")
    b = oss2_bucket(localcloud, name=name)
    b.create_bucket()
    assert name in [x.name for x in service.list_buckets().buckets]
    b.put_object("k", b"v")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        b.delete_bucket()
    b.delete_object("k")
    b.delete_bucket()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()
    # The control route creates buckets without signing.
    created = admin["oss"].post(f"/-/oss/buckets/{name}")
    assert created == {"ok": True, "created": True}
    assert b.get_bucket_info().name == name

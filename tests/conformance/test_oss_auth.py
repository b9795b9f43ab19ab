"""OSS authentication through both SDKs: V1 and V4 signatures, wrong secrets, unknown
keys, STS tokens, clock skew, anonymous requests and virtual-hosted addressing."""

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests

from oss_helpers import *  # noqa: F401,F403
from oss_helpers import oss2_bucket, v2_client


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_signs_and_is_accepted(localcloud, prefix, version):
    b = oss2_bucket(localcloud, version)
    key = prefix + f"{version}/a b+c 测试.txt"
    b.put_object(key, b"signed", headers={"x-oss-meta-Who": "me", "Content-Type": "text/plain"})
    assert b.get_object(key).read() == b"signed"
    assert [o.key for o in oss2.ObjectIteratorV2(b, prefix=prefix)] == [key]
    assert [o.key for o in oss2.ObjectIterator(b, prefix=prefix, delimiter="/")] == [prefix + f"{version}/"]
    b.batch_delete_objects([key])


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_v2_sdk_signs_and_is_accepted(localcloud, bucket_name, prefix, version):
    c = v2_client(localcloud, version)
    key = prefix + f"{version}/x y+z.txt"
    c.put_object(oss.PutObjectRequest(bucket=bucket_name, key=key, body=b"v2", content_type="text/plain"))
    assert c.get_object(oss.GetObjectRequest(bucket=bucket_name, key=key)).body.read() == b"v2"
    r = c.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket_name, prefix=prefix))
    assert [o.key for o in r.contents] == [key]


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_wrong_secret_is_signature_does_not_match(localcloud, prefix, version):
    b = oss2_bucket(localcloud, version, secret="not-the-secret")
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as err:
        b.put_object(prefix + "x", b"x")
    assert err.value.status == 403
    # The body carries the string the emulator signed, as OSS does.
    assert "StringToSign" in err.value.details or b"StringToSign" in (err.value.body or b"")
    c = v2_client(localcloud, version, secret="not-the-secret", retry_max_attempts=1)
    with pytest.raises(oss.exceptions.OperationError) as err2:
        c.get_object(oss.GetObjectRequest(bucket=localcloud["oss"]["bucket"], key=prefix + "x"))
    assert err2.value.unwrap().code == "SignatureDoesNotMatch"
    assert err2.value.unwrap().status_code == 403


def test_unknown_key_id(localcloud, prefix):
    b = oss2_bucket(localcloud, key_id="LTAI-unknown")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b.put_object(prefix + "x", b"x")
    assert err.value.status == 403 and err.value.code == "InvalidAccessKeyId"


def test_anonymous_request_is_access_denied(localcloud, bucket_name):
    r = requests.get(f"{localcloud['oss']['endpoint']}/{bucket_name}/anything", timeout=10)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text
    assert r.headers["Content-Type"] == "application/xml"
    assert len(r.headers["x-oss-request-id"]) == 24
    assert r.headers["Server"] == "AliyunOSS"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_sts_token(admin, localcloud, bucket_name, prefix, version):
    sts = admin["oss"].post("/-/oss/sts")
    key_id, secret, token = sts["access_key_id"], sts["access_key_secret"], sts["security_token"]
    b = oss2_bucket(localcloud, version, key_id=key_id, secret=secret, token=token)
    b.put_object(prefix + "sts", b"temporary")
    assert b.get_object(prefix + "sts").read() == b"temporary"
    # The v2 SDK sends the token as x-oss-security-token (V4) or security-token (V1).
    c = v2_client(localcloud, version, key_id=key_id, secret=secret, token=token)
    assert c.get_object(oss.GetObjectRequest(bucket=bucket_name, key=prefix + "sts")).body.read() == b"temporary"

    wrong = oss2_bucket(localcloud, version, key_id=key_id, secret=secret, token="CAIS-wrong")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        wrong.get_object(prefix + "sts")
    assert err.value.status == 403 and err.value.code == "InvalidSecurityToken"
    no_token = oss2_bucket(localcloud, version, key_id=key_id, secret=secret)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        no_token.get_object(prefix + "sts")
    assert err.value.code == "InvalidAccessKeyId"
    # Past its expiration (one hour by default) on the emulator clock, while the
    # request's own date is moved along so that only expiry is at stake.
    admin["oss"].advance_clock(3_700_000)
    admin["oss"].post("/-/oss/settings", {"max_skew_secs": 10_000})
    try:
        with pytest.raises(oss2.exceptions.ServerError) as err:
            b.get_object(prefix + "sts")
        assert err.value.code == "SecurityTokenExpired"
    finally:
        admin["oss"].post("/-/oss/settings", {"max_skew_secs": 900})


def test_clock_skew(admin, localcloud, prefix):
    b = oss2_bucket(localcloud)
    b.put_object(prefix + "skew", b"x")
    admin["oss"].advance_clock(16 * 60 * 1000)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b.get_object(prefix + "skew")
    assert err.value.status == 403 and err.value.code == "RequestTimeTooSkewed"
    b4 = oss2_bucket(localcloud, "v4")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        b4.get_object(prefix + "skew")
    assert err.value.code == "RequestTimeTooSkewed"
    # The v2 SDK treats RequestTimeTooSkewed as retryable: three attempts, then the error.
    requests.delete(admin["oss"].endpoint + "/-/oss/requests", timeout=10).raise_for_status()
    c = v2_client(localcloud)
    with pytest.raises(oss.exceptions.OperationError) as err2:
        c.get_object(oss.GetObjectRequest(bucket=localcloud["oss"]["bucket"], key=prefix + "skew"))
    assert err2.value.unwrap().code == "RequestTimeTooSkewed"
    log = admin["oss"].get("/-/oss/requests")["requests"]
    assert [e["code"] for e in log] == ["RequestTimeTooSkewed"] * 3
    admin["oss"].advance_clock(-2 * 60 * 1000)  # 14 minutes off: inside the window
    assert b.get_object(prefix + "skew").read() == b"x"


def test_server_date_follows_emulator_clock(admin, bucket, prefix):
    admin["oss"].advance_clock(5 * 60 * 1000)
    r = bucket.put_object(prefix + "date", b"x")
    server = oss2.utils.to_unixtime(r.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT")
    import time
    assert server - time.time() > 4 * 60


def test_virtual_hosted_request(localcloud, bucket, bucket_name, prefix):
    """Host `<bucket>.localhost:<port>` names the bucket; the path is the whole key."""
    key = prefix + "vhost.txt"
    bucket.put_object(key, b"virtual")
    port = localcloud["oss"]["endpoint"].rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{port}/{oss2.urlquote(key, '')}"
    req = oss2.http.Request("GET", url, headers={"Host": f"{bucket_name}.localhost:{port}"})
    bucket.auth._sign_request(req, bucket_name, key)
    resp = bucket.session.do_request(req, timeout=10)
    assert resp.status == 200
    assert resp.read() == b"virtual"

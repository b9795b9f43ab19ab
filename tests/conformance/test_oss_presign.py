"""Presigned URLs (query-string authentication) from both SDKs, and V4 requests that
sign additional headers."""

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests

from oss_helpers import *  # noqa: F401,F403
from oss_helpers import oss2_bucket, v2_client


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_sign_url(localcloud, prefix, version):
    b = oss2_bucket(localcloud, version)
    key = prefix + "presigned a+b.txt"
    b.put_object(key, b"shared")
    url = b.sign_url("GET", key, 60)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == b"shared"
    put_url = b.sign_url("PUT", prefix + "uploaded", 60)
    assert requests.put(put_url, data=b"via url", timeout=10).status_code == 200
    assert b.get_object(prefix + "uploaded").read() == b"via url"
    # A tampered URL is refused.
    bad = url.replace("presigned", "presignex")
    r = requests.get(bad, timeout=10)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_expired_url(admin, localcloud, prefix):
    b = oss2_bucket(localcloud, "v4")
    b.put_object(prefix + "e", b"x")
    url = b.sign_url("GET", prefix + "e", 60)
    admin["oss"].advance_clock(120_000)
    r = requests.get(url, timeout=10)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text and "expired" in r.text


def test_v2_sdk_presign(client, bucket_name, prefix):
    key = prefix + "v2 presigned"
    client.put_object(oss.PutObjectRequest(bucket=bucket_name, key=key, body=b"v2 shared"))
    result = client.presign(oss.GetObjectRequest(bucket=bucket_name, key=key))
    r = requests.get(result.url, headers=result.signed_headers or {}, timeout=10)
    assert r.status_code == 200 and r.content == b"v2 shared"


def test_sts_presign(admin, localcloud, prefix):
    sts = admin["oss"].post("/-/oss/sts")
    for version in ("v1", "v4"):
        b = oss2_bucket(localcloud, version, key_id=sts["access_key_id"],
                        secret=sts["access_key_secret"], token=sts["security_token"])
        b.put_object(prefix + version, b"sts")
        r = requests.get(b.sign_url("GET", prefix + version, 60), timeout=10)
        assert r.status_code == 200 and r.content == b"sts"
    log = admin["oss"].get("/-/oss/requests")["requests"]
    assert sts["security_token"] not in str(log)


def test_v4_additional_headers(localcloud, bucket_name, prefix):
    """oss2 can sign extra headers, listed in AdditionalHeaders (header form) or
    x-oss-additional-headers (presigned form). Changing such a header breaks the
    signature. (alibabacloud-oss-v2 1.4.1 never passes its `additional_headers` setting
    to the signer: `_client.py` builds the SigningContext without it.)"""
    b = oss2_bucket(localcloud, "v4")
    key = prefix + "additional"
    b.put_object(key, b"extra")

    def raw_get(value, sent_value):
        req = oss2.http.Request("GET", b._make_url(bucket_name, key), headers={"x-custom": value},
                                region=b.region, product=b.product)
        b.auth._sign_request(req, bucket_name, key, in_additional_headers=["x-custom"])
        assert "AdditionalHeaders=x-custom" in req.headers["authorization"]
        req.headers["x-custom"] = sent_value
        return b.session.do_request(req, timeout=10)

    assert raw_get("one", "one").status == 200
    refused = raw_get("one", "two")
    assert refused.status == 403 and b"SignatureDoesNotMatch" in refused.read()

    url = b.sign_url("GET", key, 60, headers={"x-custom": "one"}, additional_headers=["x-custom"])
    assert "x-oss-additional-headers=x-custom" in url
    assert requests.get(url, headers={"x-custom": "one"}, timeout=10).content == b"extra"
    assert requests.get(url, headers={"x-custom": "two"}, timeout=10).status_code == 403

"""Injected faults as the SDKs see them: error code and status, failure rate, latency,
dropped connections, operation-specific failures, and after_apply (the operation took
effect but its response failed)."""

import time

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from oss2.models import PartInfo

from oss_helpers import *  # noqa: F401,F403
from oss_helpers import v2_client


def injected(admin, operation):
    return [f for f in admin["oss"].faults()["injected"] if f["operation"] == operation]


def test_error_code_and_status(admin, bucket, prefix):
    before = len(injected(admin, "PutObject"))
    admin["oss"].add_fault(operation="PutObject", times=1, kind="error", status=503,
                           code="ServiceUnavailable", message="Please reduce your request rate.")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_object(prefix + "busy", b"x")
    assert err.value.status == 503
    assert err.value.code == "ServiceUnavailable"
    assert err.value.message == "Please reduce your request rate."
    assert len(err.value.request_id) == 24
    # The rule retired after one request.
    assert bucket.put_object(prefix + "busy", b"x").status == 200
    assert len(injected(admin, "PutObject")) == before + 1


def test_error_on_head_is_reported_without_body(admin, bucket, prefix):
    bucket.put_object(prefix + "h", b"x")
    admin["oss"].add_fault(operation="HeadObject", times=1, kind="error", status=500, code="InternalError")
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.head_object(prefix + "h")
    assert err.value.status == 500


def test_v2_sdk_retries_through_transient_errors(admin, client, bucket_name, prefix):
    before = len(injected(admin, "PutObject"))
    admin["oss"].add_fault(operation="PutObject", times=2, kind="error", status=500, code="InternalError")
    r = client.put_object(oss.PutObjectRequest(bucket=bucket_name, key=prefix + "retried", body=b"ok"))
    assert r.status_code == 200
    assert len(injected(admin, "PutObject")) == before + 2


def test_failure_rate(admin, localcloud, bucket, prefix):
    bucket.put_object(prefix + "r", b"x")
    admin["oss"].add_fault(operation="GetObject", rate=1.0, kind="error", status=503, code="ServiceUnavailable")
    for _ in range(5):
        with pytest.raises(oss2.exceptions.ServerError):
            bucket.get_object(prefix + "r")
    admin["oss"].clear_faults()
    admin["oss"].add_fault(operation="GetObject", rate=0.5, kind="error", status=503, code="ServiceUnavailable")
    failures = 0
    for _ in range(200):
        try:
            bucket.get_object(prefix + "r").read()
        except oss2.exceptions.ServerError as e:
            assert e.status == 503
            failures += 1
    assert 40 <= failures <= 160, failures
    admin["oss"].clear_faults()
    admin["oss"].add_fault(operation="GetObject", rate=0.0, kind="error", status=503, code="ServiceUnavailable")
    for _ in range(20):
        assert bucket.get_object(prefix + "r").read() == b"x"


def test_latency(admin, localcloud, bucket, bucket_name, prefix):
    bucket.put_object(prefix + "slow", b"x")
    admin["oss"].add_fault(operation="GetObject", times=1, kind="latency", ms=700)
    start = time.monotonic()
    assert bucket.get_object(prefix + "slow").read() == b"x"
    assert time.monotonic() - start >= 0.7
    # A client with a shorter read timeout gives up.
    admin["oss"].add_fault(operation="GetObject", times=1, kind="latency", ms=1500)
    impatient = v2_client(localcloud, readwrite_timeout=0.3, retry_max_attempts=1)
    with pytest.raises(Exception) as err:
        impatient.get_object(oss.GetObjectRequest(bucket=bucket_name, key=prefix + "slow")).body.read()
    assert "timeout" in repr(err.value).lower() or "timed out" in repr(err.value).lower()


def test_latency_after_apply(admin, localcloud, bucket, bucket_name, prefix):
    # Without after_apply, a client that gives up while the request waits leaves
    # nothing done; with it, the operation took effect and only its answer is late.
    for after_apply, key in ((False, "late-before"), (True, "late-after")):
        admin["oss"].add_fault(operation="PutObject", times=1, kind="latency", ms=1500, after_apply=after_apply)
        impatient = v2_client(localcloud, readwrite_timeout=0.3, retry_max_attempts=1)
        with pytest.raises(Exception):
            impatient.put_object(oss.PutObjectRequest(bucket=bucket_name, key=prefix + key, body=b"x"))
        time.sleep(1.5)
        assert bucket.object_exists(prefix + key) == after_apply, key


def test_dropped_connection(admin, bucket, client, bucket_name, prefix):
    admin["oss"].add_fault(operation="PutObject", times=1, kind="drop")
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.put_object(prefix + "dropped", b"x")
    assert not bucket.object_exists(prefix + "dropped")
    # The v2 SDK retries a dropped connection.
    admin["oss"].add_fault(operation="PutObject", times=1, kind="drop")
    r = client.put_object(oss.PutObjectRequest(bucket=bucket_name, key=prefix + "dropped", body=b"y"))
    assert r.status_code == 200
    log = admin["oss"].get("/-/oss/requests")["requests"]
    assert any(e["operation"] == "PutObject" and e["status"] == 0 for e in log)


def start_upload(bucket, key):
    upload_id = bucket.init_multipart_upload(key).upload_id
    r = bucket.upload_part(key, upload_id, 1, b"only part")
    return upload_id, [PartInfo(1, r.etag, size=9, part_crc=r.crc)]


def test_only_complete_fails(admin, bucket, prefix):
    key = prefix + "complete-fails"
    admin["oss"].add_fault(operation="CompleteMultipartUpload", times=1, kind="error",
                           status=500, code="InternalError")
    upload_id, parts = start_upload(bucket, key)  # Initiate and UploadPart are unaffected
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.complete_multipart_upload(key, upload_id, parts)
    assert err.value.status == 500 and err.value.code == "InternalError"
    assert not bucket.object_exists(key)
    # The upload is still open, so the retry completes it.
    assert bucket.complete_multipart_upload(key, upload_id, parts).status == 200
    assert bucket.get_object(key).read() == b"only part"


def test_after_apply_complete_with_lost_response(admin, bucket, prefix):
    key = prefix + "lost-response"
    upload_id, parts = start_upload(bucket, key)
    admin["oss"].add_fault(operation="CompleteMultipartUpload", times=1, kind="drop", after_apply=True)
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.complete_multipart_upload(key, upload_id, parts)
    # It took effect: the object exists, and a retry finds no upload (spec §6.2).
    head = bucket.head_object(key)
    assert head.object_type == "Multipart" and head.content_length == 9
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.complete_multipart_upload(key, upload_id, parts)


def test_after_apply_error_on_put(admin, bucket, prefix):
    key = prefix + "applied"
    admin["oss"].add_fault(operation="PutObject", times=1, kind="error", status=500,
                           code="InternalError", after_apply=True)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        bucket.put_object(key, b"stored anyway")
    assert err.value.status == 500
    assert bucket.get_object(key).read() == b"stored anyway"
    assert injected(admin, "PutObject")[-1]["after_apply"] is True

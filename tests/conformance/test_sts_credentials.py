"""Temporary credentials from localcloud's emulated STS and ECS metadata service, used
by the official SDKs: aliyun-python-sdk-core signs the AssumeRole RPC call (the
emulator verifies its signature), and tablestore, oss2 and pyodps work with the issued
AccessKeyId, secret and security token, and are refused once the token has expired or
when it is not the one issued, with each service's error."""

import json
import time

import oss2
import pytest
import requests
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from odps import ODPS
from odps.accounts import StsAccount
from tablestore import OTSClient
from tablestore.error import OTSServiceError
from tablestore.retry import NoRetryPolicy

ROLE_ARN = "acs:ram::1234567890123456:role/Exporter"


def sts_endpoint(localcloud):
    return localcloud["sts"]["endpoint"]


def assume_role(localcloud, secret=None, duration=900):
    client = AcsClient(localcloud["access_key_id"], secret or localcloud["access_key_secret"],
                       "cn-hangzhou")
    request = CommonRequest()
    request.set_accept_format("json")
    request.set_domain(sts_endpoint(localcloud).split("://", 1)[1])
    request.set_protocol_type("http")
    request.set_method("GET")
    request.set_version("2015-04-01")
    request.set_action_name("AssumeRole")
    request.add_query_param("RoleArn", ROLE_ARN)
    request.add_query_param("RoleSessionName", "conformance")
    request.add_query_param("DurationSeconds", str(duration))
    return json.loads(client.do_action_with_exception(request))


def from_metadata(localcloud):
    base = sts_endpoint(localcloud)
    token = requests.put(base + "/latest/api/token",
                         headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "60"}).text
    headers = {"X-aliyun-ecs-metadata-token": token}
    role = requests.get(base + "/latest/meta-data/ram/security-credentials/", headers=headers).text
    assert role == localcloud["sts"]["role_name"]
    body = requests.get(base + "/latest/meta-data/ram/security-credentials/" + role,
                        headers=headers).json()
    assert body["Code"] == "Success"
    return body


def settings(localcloud, **values):
    r = requests.post(sts_endpoint(localcloud) + "/-/sts/settings", data=json.dumps(values))
    r.raise_for_status()


def ots(localcloud, c, token=None):
    return OTSClient(localcloud["ots"]["endpoint"], c["AccessKeyId"], c["AccessKeySecret"],
                     localcloud["ots"]["instance"], sts_token=token or c["SecurityToken"],
                     retry_policy=NoRetryPolicy())


def oss(localcloud, c, token=None):
    auth = oss2.StsAuth(c["AccessKeyId"], c["AccessKeySecret"], token or c["SecurityToken"])
    info = localcloud["oss"]
    return oss2.Bucket(auth, info["endpoint"], info["bucket"], region=info["region"])


def odps(localcloud, c):
    account = StsAccount(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"])
    return ODPS(account=account, project=localcloud["odps"]["project"],
                endpoint=localcloud["odps"]["endpoint"] + "/api")


def test_assume_role_signed_by_the_official_core_sdk(localcloud):
    answer = assume_role(localcloud)
    c = answer["Credentials"]
    assert c["AccessKeyId"].startswith("STS.")
    assert answer["AssumedRoleUser"]["Arn"] == "acs:ram::1234567890123456:role/exporter/conformance"
    # The three services accept the issued credentials.
    ots(localcloud, c).list_table()
    oss(localcloud, c).put_object("sts/assumed.txt", b"x")
    assert odps(localcloud, c).exist_table("no_such_table_sts") is False
    # STS quotes its string to sign after the colon (aliyunsdkcore's client compares it
    # with its own to tell a wrong secret from a signing mistake).
    with pytest.raises(ServerException) as e:
        assume_role(localcloud, secret="not-the-secret")
    assert e.value.get_error_code() == "SignatureDoesNotMatch"
    quoted = e.value.get_error_msg().split(":")[1]
    assert quoted.startswith("GET&%2F&AccessKeyId%3D" + localcloud["access_key_id"] + "%26Action%3DAssumeRole%26")
    with pytest.raises(ServerException) as e:
        assume_role(localcloud, duration=60)
    assert e.value.get_error_code() == "InvalidParameter.DurationSeconds"


def test_metadata_credentials_expire_with_each_services_error(localcloud):
    settings(localcloud, ttl_ms=1500)
    try:
        c = from_metadata(localcloud)
        ots(localcloud, c).list_table()
        oss(localcloud, c).put_object("sts/metadata.txt", b"x")
        # Another token with the issued key is refused at once.
        with pytest.raises(OTSServiceError) as e:
            ots(localcloud, c, token="CAISnot-the-token").list_table()
        assert e.value.code == "OTSAuthFailed"
        with pytest.raises(oss2.exceptions.ServerError) as e:
            oss(localcloud, c, token="CAISnot-the-token").put_object("sts/x.txt", b"x")
        assert e.value.code == "InvalidSecurityToken"
        time.sleep(1.6)
        with pytest.raises(OTSServiceError) as e:
            ots(localcloud, c).list_table()
        assert (e.value.code, e.value.message) == (
            "OTSAuthFailed", "The security token you provided has expired.")
        with pytest.raises(oss2.exceptions.ServerError) as e:
            oss(localcloud, c).put_object("sts/late.txt", b"x")
        assert (e.value.status, e.value.code) == (403, "SecurityTokenExpired")
        with pytest.raises(Exception) as e:
            odps(localcloud, c).exist_table("anything")
        assert "STS token has expired" in str(e.value)
    finally:
        settings(localcloud, ttl_ms=None)

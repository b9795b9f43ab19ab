"""Helpers for the OSS conformance tests: SDK clients bound to the emulator.

Import the fixtures into a test module with `from oss_helpers import *`.
"""

import uuid

import alibabacloud_oss_v2 as oss
import oss2
import pytest

REGION = "cn-hangzhou"


def oss2_bucket(localcloud, version="v1", secret=None, key_id=None, token=None, name=None):
    """An oss2 Bucket against the emulator, signing with V1 or V4."""
    info = localcloud["oss"]
    key_id = key_id or localcloud["access_key_id"]
    secret = secret or localcloud["access_key_secret"]
    if token is not None:
        auth_version = oss2.AUTH_VERSION_4 if version == "v4" else oss2.AUTH_VERSION_1
        auth = oss2.StsAuth(key_id, secret, token, auth_version=auth_version)
    elif version == "v4":
        auth = oss2.AuthV4(key_id, secret)
    else:
        auth = oss2.Auth(key_id, secret)
    return oss2.Bucket(auth, info["endpoint"], name or info["bucket"], region=info["region"])


def v2_client(localcloud, version="v4", secret=None, key_id=None, token=None, **config):
    """An alibabacloud-oss-v2 Client against the emulator."""
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        key_id or localcloud["access_key_id"],
        secret or localcloud["access_key_secret"],
        token,
    )
    cfg.region = localcloud["oss"]["region"]
    cfg.endpoint = localcloud["oss"]["endpoint"]
    cfg.signature_version = version
    for name, value in config.items():
        setattr(cfg, name, value)
    return oss.Client(cfg)


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def bucket_name(localcloud):
    return localcloud["oss"]["bucket"]


@pytest.fixture
def bucket(localcloud):
    """oss2, V1 signatures, CRC checks on (the oss2 default)."""
    b = oss2_bucket(localcloud, "v1")
    assert b.enable_crc
    return b


@pytest.fixture
def bucket_v4(localcloud):
    return oss2_bucket(localcloud, "v4")


@pytest.fixture
def client(localcloud):
    """alibabacloud-oss-v2, V4 signatures, CRC checks on (the default)."""
    return v2_client(localcloud)


@pytest.fixture
def prefix():
    return unique()

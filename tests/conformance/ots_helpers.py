"""Helpers for the Tablestore conformance tests.

`make_client` builds an official `tablestore.OTSClient` for the emulator. `StreamApi`
drives the Stream API through the SDK's own protocol layer: its header builder and
signer (`OTSProtocol._make_request_headers`), its connection pool, its response checks
(`OTSProtocol.handle_error`: MD5, date, authorization signature, error decoding) and its
protobuf classes (`table_store_pb2`). The SDK has no Stream calls of its own; it only
lacks the action names in its allow-list, which `StreamApi` extends on its own protocol
instance. `decode_stream_record` reads a stream record with the SDK's PlainBuffer input
stream and CRC-8 classes (its row reader cannot read cell types or the extension).
"""

import uuid
import zlib

from tablestore import OTSClient
from tablestore.auth import RequestContext
from tablestore.error import OTSClientError, OTSServiceError
from tablestore.retry import NoRetryPolicy
import tablestore.protobuf.table_store_pb2 as pb2
from tablestore.plainbuffer.plain_buffer_stream import PlainBufferInputStream
from tablestore.plainbuffer.plain_buffer_crc8 import PlainBufferCrc8
from tablestore.plainbuffer.plain_buffer_coded_stream import PlainBufferCodedInputStream
import tablestore.const_module as const

STREAM_ACTIONS = ["ListStream", "DescribeStream", "GetShardIterator", "GetStreamRecord"]


def unique(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


def make_client(localcloud, native=True, secret=None, retry=False, region=None, **kw):
    """An OTSClient for the emulator. `native_fallback=False`, so a response the
    SDK's C decoder rejects fails the test instead of falling back silently."""
    ots = localcloud["ots"]
    kwargs = dict(enable_native=native, native_fallback=False)
    if not retry:
        kwargs["retry_policy"] = NoRetryPolicy()
    kwargs.update(kw)
    return OTSClient(
        ots["endpoint"],
        localcloud["access_key_id"],
        secret or localcloud["access_key_secret"],
        ots["instance"],
        region=region,
        **kwargs
    )


class StreamApi(object):
    """The Stream API through the SDK's protocol layer."""

    def __init__(self, client):
        self.client = client
        self.protocol = client.protocol
        # Instance attribute: the class-level list of the SDK stays untouched.
        self.protocol.api_list = list(self.protocol.api_list) + STREAM_ACTIONS

    def call(self, action, request, response_class, compress=False):
        body = request.SerializeToString()
        query = "/" + action
        context = RequestContext(self.client.credentials_provider.get_credentials())
        if compress:
            # Java SDK option: a zlib body, its raw size declared; MD5 covers the
            # compressed bytes. The extra headers are signed like every x-ots-* header.
            raw_size = len(body)
            body = zlib.compress(body)
            self.protocol.extra_headers = {
                "x-ots-request-compress-type": "deflate",
                "x-ots-request-compress-size": str(raw_size),
            }
        try:
            headers = self.protocol._make_request_headers(body, query, self.client._signer, context)
        finally:
            self.protocol.extra_headers = {}
        status, reason, res_headers, res_body = self.client.connection.send_receive(
            query, headers, body
        )
        # Raises OTSClientError on a bad signature/MD5/date, OTSServiceError on errors.
        self.protocol.handle_error(
            action, query, status, reason, res_headers, res_body, self.client._signer, context
        )
        response = response_class()
        response.ParseFromString(res_body)
        return response

    def list_stream(self, table_name=None):
        req = pb2.ListStreamRequest()
        if table_name is not None:
            req.table_name = table_name
        return self.call("ListStream", req, pb2.ListStreamResponse)

    def describe_stream(self, stream_id, start_shard_id=None, shard_limit=None):
        req = pb2.DescribeStreamRequest(stream_id=stream_id)
        if start_shard_id is not None:
            req.inclusive_start_shard_id = start_shard_id
        if shard_limit is not None:
            req.shard_limit = shard_limit
        return self.call("DescribeStream", req, pb2.DescribeStreamResponse)

    def all_shards(self, stream_id, shard_limit=None):
        shards, start = [], None
        while True:
            resp = self.describe_stream(stream_id, start, shard_limit)
            shards.extend(resp.shards)
            if not resp.HasField("next_shard_id"):
                return shards
            start = resp.next_shard_id

    def shard_iterator(self, stream_id, shard_id):
        req = pb2.GetShardIteratorRequest(stream_id=stream_id, shard_id=shard_id)
        return self.call("GetShardIterator", req, pb2.GetShardIteratorResponse).shard_iterator

    def records(self, iterator, limit=None):
        req = pb2.GetStreamRecordRequest(shard_iterator=iterator)
        if limit is not None:
            req.limit = limit
        return self.call("GetStreamRecord", req, pb2.GetStreamRecordResponse)

    def drain(self, shard_id, stream_id, limit=None):
        """Reads a shard to its end (closed) or until caught up (open); returns the
        decoded records and whether the shard ended."""
        iterator = self.shard_iterator(stream_id, shard_id)
        out = []
        while True:
            resp = self.records(iterator, limit)
            out.extend(decode_stream_record(r) for r in resp.stream_records)
            if not resp.HasField("next_shard_iterator"):
                return out, True
            if not resp.stream_records:
                assert resp.next_shard_iterator == iterator
                return out, False
            iterator = resp.next_shard_iterator


ACTION_NAMES = {pb2.PUT_ROW: "PUT_ROW", pb2.UPDATE_ROW: "UPDATE_ROW", pb2.DELETE_ROW: "DELETE_ROW"}
TAG_EXTENSION = 0x0B


def _tag(value):
    return value if isinstance(value, int) else ord(value)


def decode_stream_record(stream_record):
    """Decodes one StreamRecord with the SDK's PlainBuffer input stream, verifying
    every cell and row checksum with the SDK's CRC-8, and reading the sequence info."""
    stream = PlainBufferInputStream(stream_record.record)
    coded = PlainBufferCodedInputStream(stream)
    assert coded.read_header() == 0x75
    stream.read_tag()
    assert _tag(stream.last_tag) == _tag(const.TAG_ROW_PK)
    stream.read_tag()
    row_crc = 0
    primary_key = []
    while _tag(stream.last_tag) == _tag(const.TAG_CELL):
        name, value, row_crc = coded.read_primary_key_column(row_crc)
        primary_key.append((name, value))
    cells = []
    if _tag(stream.last_tag) == _tag(const.TAG_ROW_DATA):
        stream.read_tag()
        while _tag(stream.last_tag) == _tag(const.TAG_CELL):
            cell, row_crc = _read_cell(stream, coded, row_crc)
            cells.append(cell)
    delete_marker = _tag(stream.last_tag) == _tag(const.TAG_DELETE_ROW_MARKER)
    if delete_marker:
        stream.read_tag()
    row_crc = PlainBufferCrc8.crc_int8(row_crc, 1 if delete_marker else 0)
    assert _tag(stream.last_tag) == TAG_EXTENSION, "stream record without sequence info"
    stream.read_raw_little_endian32()  # extension length
    stream.read_tag()
    assert _tag(stream.last_tag) == 0x0C
    stream.read_raw_little_endian32()
    stream.read_tag()
    assert _tag(stream.last_tag) == 0x0D
    epoch = stream.read_raw_little_endian32()
    stream.read_tag()
    assert _tag(stream.last_tag) == 0x0E
    timestamp_us = stream.read_int64()
    stream.read_tag()
    assert _tag(stream.last_tag) == 0x0F
    row_index = stream.read_raw_little_endian32()
    stream.read_tag()
    assert _tag(stream.last_tag) == _tag(const.TAG_ROW_CHECKSUM)
    assert ord(stream.read_raw_byte()) == row_crc, "row checksum mismatch"
    assert stream.cur_pos == len(stream_record.record)
    return {
        "action": ACTION_NAMES[stream_record.action_type],
        "primary_key": primary_key,
        "cells": cells,
        "delete_marker": delete_marker,
        "epoch": epoch,
        "timestamp_us": timestamp_us,
        "row_index": row_index,
    }


def _read_cell(stream, coded, row_crc):
    stream.read_tag()
    assert _tag(stream.last_tag) == _tag(const.TAG_CELL_NAME)
    crc = 0
    name = stream.read_utf_string(stream.read_raw_little_endian32())
    crc = PlainBufferCrc8.crc_string(crc, name)
    stream.read_tag()
    value = op = timestamp = None
    if _tag(stream.last_tag) == _tag(const.TAG_CELL_VALUE):
        value, crc = coded.read_column_value(crc)
    if _tag(stream.last_tag) == _tag(const.TAG_CELL_TYPE):
        op = ord(stream.read_raw_byte())
        stream.read_tag()
    if _tag(stream.last_tag) == _tag(const.TAG_CELL_TIMESTAMP):
        timestamp = stream.read_int64()
        crc = PlainBufferCrc8.crc_int64(crc, timestamp)
        stream.read_tag()
    if op is not None:
        crc = PlainBufferCrc8.crc_int8(crc, op)
    assert _tag(stream.last_tag) == _tag(const.TAG_CELL_CHECKSUM)
    assert ord(stream.read_raw_byte()) == crc, "cell checksum mismatch on %s" % name
    stream.read_tag()
    kind = {None: "PUT", 0x01: "DELETE_ALL", 0x03: "DELETE_ONE"}[op]
    return (kind, name, value, timestamp), PlainBufferCrc8.crc_int8(row_crc, crc)


__all__ = [
    "OTSClientError",
    "OTSServiceError",
    "StreamApi",
    "decode_stream_record",
    "make_client",
    "pb2",
    "unique",
]

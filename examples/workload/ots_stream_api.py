"""Tablestore calls the official Python SDK has no method for, made through the SDK's
own protocol layer (its header builder, signer, connection pool, response checks and
protobuf classes): creating a table with its Stream enabled, and ListStream.

The SDK (`tablestore` 6.x) can create tables but cannot enable a Stream; the service's
`CreateTable` takes a `stream_spec` (spec `tablestore.md` §4.1), which we send with the
SDK's own `CreateTableRequest` protobuf class.
"""

from tablestore.auth import RequestContext
from tablestore.error import OTSServiceError
import tablestore.protobuf.table_store_pb2 as pb2

_EXTRA_ACTIONS = ["CreateTable", "DescribeTable", "ListStream"]
_PK_TYPES = {"STRING": pb2.STRING, "INTEGER": pb2.INTEGER, "BINARY": pb2.BINARY}


def call(client, action, request, response_class):
    """Sends one protobuf request through the SDK's protocol layer."""
    protocol = client.protocol
    if action not in protocol.api_list:
        # An instance attribute: the SDK's class-level list stays untouched.
        protocol.api_list = list(protocol.api_list) + _EXTRA_ACTIONS
    body = request.SerializeToString()
    query = "/" + action
    context = RequestContext(client.credentials_provider.get_credentials())
    headers = protocol._make_request_headers(body, query, client._signer, context)
    status, reason, res_headers, res_body = client.connection.send_receive(query, headers, body)
    protocol.handle_error(action, query, status, reason, res_headers, res_body, client._signer, context)
    response = response_class()
    response.ParseFromString(res_body)
    return response


def create_stream_table(client, name, primary_key, max_versions=3, stream_hours=24, reuse=False):
    """Creates `name` with `primary_key` = [(column, "STRING"|"INTEGER"|"BINARY")], no TTL,
    and its Stream enabled (`stream_hours` of retention). With `reuse`, an existing table
    is accepted if its Stream is enabled. Returns the stream id."""
    req = pb2.CreateTableRequest()
    req.table_meta.table_name = name
    for column, kind in primary_key:
        req.table_meta.primary_key.add(name=column, type=_PK_TYPES[kind])
    req.reserved_throughput.capacity_unit.read = 0
    req.reserved_throughput.capacity_unit.write = 0
    req.table_options.time_to_live = -1
    req.table_options.max_versions = max_versions
    req.stream_spec.enable_stream = True
    req.stream_spec.expiration_time = stream_hours
    try:
        call(client, "CreateTable", req, pb2.CreateTableResponse)
    except OTSServiceError as e:
        if not (reuse and e.get_error_code() == "OTSObjectAlreadyExist"):
            raise
        details = call(
            client, "DescribeTable", pb2.DescribeTableRequest(table_name=name), pb2.DescribeTableResponse
        ).stream_details
        if not details.enable_stream:
            raise RuntimeError("table %s exists but its Stream is not enabled" % name)
    streams = call(client, "ListStream", pb2.ListStreamRequest(table_name=name), pb2.ListStreamResponse).streams
    ids = [s.stream_id for s in streams if s.table_name == name]
    if not ids:
        raise RuntimeError("table %s has no stream after CreateTable" % name)
    return ids[0]

"""The Firehose-compatible API driven by the unmodified AWS SDK for Python.

Run by ./scripts/test against the running server, with PULSEBOARD_BASE_URL,
the server's DATABASE_URL and an ingest key (PULSEBOARD_E2E_ACCESS_KEY_ID,
PULSEBOARD_E2E_SECRET) set. The producer calls mirror the seed's Firehose
producer script: put_record with json.dumps(payload) as Data.
"""

import json
import os
import subprocess
import time
import uuid

import boto3
import botocore.exceptions
import pytest

BASE_URL = os.environ["PULSEBOARD_BASE_URL"]
DATABASE_URL = os.environ["DATABASE_URL"]


ACCESS_KEY_ID = os.environ["PULSEBOARD_E2E_ACCESS_KEY_ID"]
SECRET = os.environ["PULSEBOARD_E2E_SECRET"]


def client(access_key_id, secret):
    return boto3.client(
        "firehose",
        endpoint_url=BASE_URL,
        region_name="eu-central-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
    )


@pytest.fixture(scope="module")
def firehose():
    return client(ACCESS_KEY_ID, SECRET)


def stored_temps(guid):
    """The temperatures stored for one sensor GUID, oldest first."""
    out = subprocess.run(
        ["psql", DATABASE_URL, "-At", "-c",
         f"SELECT temp FROM message WHERE guid = '{guid}' ORDER BY ts, id"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [float(line) for line in out.split()]


def reading(guid, temp):
    return {"guid": guid, "ts": int(time.time()), "temp": temp}


def test_put_record_as_the_seed_producer_sends_it(firehose):
    guid = str(uuid.uuid4())
    response = firehose.put_record(
        DeliveryStreamName="redshift-delivery-stream",
        Record={"Data": json.dumps(reading(guid, 88.25))},
    )
    assert response["RecordId"]
    # Acknowledged means stored: no waiting needed.
    assert stored_temps(guid) == [88.25]


def test_put_record_batch_reports_each_record(firehose):
    guid = str(uuid.uuid4())
    records = [{"Data": json.dumps(reading(guid, 60 + i))} for i in range(499)]
    records.insert(7, {"Data": b"not a reading"})
    response = firehose.put_record_batch(DeliveryStreamName="sensors", Records=records)
    assert response["FailedPutCount"] == 1
    answers = response["RequestResponses"]
    assert len(answers) == 500
    assert answers[7]["ErrorCode"] == "InvalidArgumentException"
    assert all("RecordId" in a for i, a in enumerate(answers) if i != 7)
    assert stored_temps(guid) == [60.0 + i for i in range(499)]


def test_protocol_errors_arrive_as_sdk_exceptions(firehose):
    with pytest.raises(firehose.exceptions.ResourceNotFoundException):
        firehose.put_record(DeliveryStreamName="no-such-stream", Record={"Data": b"{}"})
    with pytest.raises(firehose.exceptions.InvalidArgumentException):
        firehose.put_record(DeliveryStreamName="sensors", Record={"Data": b"{\"guid\": 1}"})


def refused_code(call):
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call()
    return refused.value.response["Error"]["Code"]


def psql(sql):
    return subprocess.run(
        ["psql", DATABASE_URL, "-At", "-c", sql], check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_requests_without_a_valid_key_are_refused_and_store_nothing():
    guid = str(uuid.uuid4())
    record = {"Data": json.dumps(reading(guid, 12.5))}
    letters_before = psql("SELECT count(*) FROM dead_letters")

    wrong_secret = client(ACCESS_KEY_ID, SECRET + "x")
    assert refused_code(lambda: wrong_secret.put_record(
        DeliveryStreamName="sensors", Record=record)) == "InvalidSignatureException"
    unknown = client("PBKNOSUCHKEY00000000", SECRET)
    assert refused_code(lambda: unknown.put_record(
        DeliveryStreamName="sensors", Record=record)) == "UnrecognizedClientException"

    # A revoked key stops working at once.
    made = subprocess.run(
        [os.environ["PULSEBOARD_BINARY"], "create-ingest-key", "sdk revocation test"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    revocable = client(made[0], made[1])
    revocable.put_record(DeliveryStreamName="sensors", Record={"Data": json.dumps(reading(guid, 1.0))})
    psql(f"UPDATE ingest_keys SET revoked_at = now() WHERE access_key_id = '{made[0]}'")
    assert refused_code(lambda: revocable.put_record(
        DeliveryStreamName="sensors", Record=record)) == "UnrecognizedClientException"

    assert stored_temps(guid) == [1.0]
    assert psql("SELECT count(*) FROM dead_letters") == letters_before

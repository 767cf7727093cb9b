"""The order of an ECS deploy's requests, from moto's own request log: the lock is written before the service or a
task definition is described (the old order read both first, then took the lock)."""
from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from fixtures.aws import running_moto
from test_ecs_deploy import Ecs, ecs  # noqa: F401 - ecs is the fixture

STATE_READS = {"DescribeServices", "DescribeTaskDefinition"}


@pytest.fixture(scope="module")
def recording_moto(tmp_path_factory):
    """A moto server of this module's own, recording every request to a file."""
    folder = tmp_path_factory.mktemp("moto-recorder")
    log = folder / "requests.jsonl"
    with running_moto(folder, {"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(log)}) as server:
        yield server, log


@pytest.fixture
def aws(recording_moto):
    """The recording server, emptied (and its log too) before the test: the ``ecs`` fixture sets up on it."""
    server, _ = recording_moto
    server.reset()
    return server


def requests_since_reset(server) -> list[str]:
    """What moto served since the last reset of its recording: ``X-Amz-Target`` operations by name, S3 as
    ``METHOD /bucket/key`` (with ``if-none-match`` when the put was conditional)."""
    with urllib.request.urlopen(f"{server.endpoint}/moto-api/recorder/download-recording", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    out = []
    for line in lines:
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        if "x-amz-target" in headers:
            operation = headers["x-amz-target"].rsplit(".", 1)[-1]
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode()
            out.append(f"{operation} {json.loads(body).get('Name', '')}" if operation == "PutParameter" else operation)
        else:
            path = entry["url"].split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
            out.append(f"{entry['method']} /{path}" + (" if-none-match" if "if-none-match" in headers else ""))
    return out


def reset_recording(server) -> None:
    request = urllib.request.Request(f"{server.endpoint}/moto-api/recorder/reset-recording", method="POST")
    urllib.request.urlopen(request, timeout=10)


@pytest.mark.parametrize("store", ["s3", "ssm"])
def test_an_ecs_deploy_writes_its_lock_before_it_reads_the_service(ecs, store):  # noqa: F811
    if store == "ssm":
        ecs.project.configure({"dockyard": {"ecs": {"bucket": ""}}})
        ecs.project.commit("no bucket")
    reset_recording(ecs.aws)
    result = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    served = requests_since_reset(ecs.aws)
    lock_path = f"/dockyard/{ecs.project.app}/locks/prod"
    if store == "s3":
        taken = served.index(f"PUT /dockyard-deploys{lock_path}.json if-none-match")
    else:
        taken = served.index(f"PutParameter {lock_path}")
    first_read = min(n for n, op in enumerate(served) if op in STATE_READS)
    assert taken < first_read, served
    assert not any(op in STATE_READS for op in served[:taken]), served

"""Instances (issue 4) end to end with boto3: placement over the model's
subnets, and each way a deployment can fail ending in Failed with the reason."""

import os
import stat

import pytest

from conftest import ZONES, variant


def write_executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


NEVER_PINGS = """#!/bin/sh
echo "loading a very large model..."
exec sleep 600
"""


@pytest.fixture
def patient_server(strait_factory):
    """A server whose instances have 3 s to answer /ping when the variant sets no timeout."""
    server = strait_factory.start(args=["--startup-health-check-timeout", "3"])
    resources = server.resources()
    yield server, resources
    resources.cleanup()


def test_three_instances_over_two_subnets(strait, resources):
    model = resources.model(zones=["us-east-1a", "us-east-1b"])
    endpoint = resources.endpoint(resources.endpoint_config(variants=[variant(model, count=3)]))
    described = resources.sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    zones = []
    for pid, _ in strait.instance_pids(endpoint).values():
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        address = env[b"STRAIT_BIND_ADDRESS"].decode()
        zones.append(next(zone for zone, (_, prefix) in ZONES.items() if address.startswith(prefix)))
    assert sorted(zones) == ["us-east-1a", "us-east-1a", "us-east-1b"], zones


def test_server_that_never_answers_ping_fails_with_its_log(patient_server, tmp_path):
    server, resources = patient_server
    image = write_executable(tmp_path / "serve", NEVER_PINGS)
    endpoint = resources.endpoint(resources.endpoint_config(resources.model(image=image)), wait=False)
    failed = resources.wait_status(endpoint, {"Failed"}, timeout=30)
    reason = failed["FailureReason"]
    assert "did not pass the ping health check within" in reason, reason
    assert "loading a very large model" in reason, reason
    assert server.instance_pids(endpoint) == {}


def test_unreachable_model_data_fails(strait, resources):
    # Nothing listens on port 1 of the loopback address.
    model = resources.model(model_data="http://127.0.0.1:1/model.tar.gz")
    endpoint = resources.endpoint(resources.endpoint_config(model), wait=False)
    reason = resources.wait_status(endpoint, {"Failed"})["FailureReason"]
    assert "Failed to download model data from http://127.0.0.1:1/model.tar.gz" in reason, reason


def test_startup_timeout_option_is_validated(strait_factory):
    with pytest.raises(BaseException):
        strait_factory.start(args=["--startup-health-check-timeout", "0"])


CRASHES_WHEN_TOLD = """#!/bin/sh
# A model server that starts, unless a file `crash` lies beside it: then it dies at once.
DIR=$(dirname "$0")
echo start >> "$DIR/starts"
if [ -e "$DIR/crash" ]; then echo "crashing on purpose"; exit 3; fi
exec python3 "$DIR/model.py"
"""


def test_a_replacement_that_keeps_crashing_backs_off(strait, resources, tmp_path):
    """An instance whose replacements die at once is retried with back-off (1 s, 2 s, 4 s, …), not once per exit of
    each failed attempt; once its image starts again the endpoint is whole again."""
    import signal
    import time

    from test_invoke import MODEL_SCRIPT

    (tmp_path / "model.py").write_text(MODEL_SCRIPT)
    image = write_executable(tmp_path / "serve", CRASHES_WHEN_TOLD)
    endpoint = resources.endpoint(resources.endpoint_config(resources.model(image=image)))
    (tmp_path / "crash").write_text("")
    (pid, _), = strait.instance_pids(endpoint).values()
    starts_before = len((tmp_path / "starts").read_text().splitlines())
    os.kill(pid, signal.SIGKILL)
    time.sleep(6)
    attempts = len((tmp_path / "starts").read_text().splitlines()) - starts_before
    assert 2 <= attempts <= 5, f"{attempts} replacement attempts in 6 s"
    (tmp_path / "crash").unlink()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(strait.instance_pids(endpoint)) != 1:
        time.sleep(0.2)
    assert len(strait.instance_pids(endpoint)) == 1
    assert resources.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"

"""`strait endpoints`, `strait instances ENDPOINT` and `strait logs ENDPOINT`
against a running server, as a person uses them."""

import os
import signal
import subprocess
import time

import pytest

from conftest import ZONES, strait_binary, variant


def strait_cli(server, *args, check=True, timeout=30):
    result = subprocess.run(
        [str(strait_binary()), *args, "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def rows(output):
    lines = output.strip().split("\n")
    return [line.split() for line in lines[1:]]


def test_endpoints_instances_and_logs(strait, resources):
    model = resources.model(zones=["us-east-1a", "us-east-1b"])
    endpoint = resources.endpoint(resources.endpoint_config(variants=[variant(model, count=2)]))

    listed = {row[0]: row for row in rows(strait_cli(strait, "endpoints").stdout)}
    assert listed[endpoint][1:] == ["InService", "2", "2"]

    instances = rows(strait_cli(strait, "instances", endpoint).stdout)
    assert len(instances) == 2
    assert sorted(row[2] for row in instances) == ["us-east-1a", "us-east-1b"]
    pids = {row[0]: int(row[5]) for row in instances}
    assert pids == {name: pid for name, (pid, _) in strait.instance_pids(endpoint).items()}
    for row in instances:
        address = row[3].rsplit(":", 1)[0]
        assert address.startswith(ZONES[row[2]][1]) and row[4] == "InService" and row[6] == "0"

    logs = strait_cli(strait, "logs", endpoint).stdout
    for instance in pids:
        assert f"[{instance}] strait worker (echo) listening on" in logs
    one = next(iter(pids))
    only = strait_cli(strait, "logs", endpoint, "--instance", one).stdout
    assert only.startswith("strait worker (echo) listening on") and "[" not in only

    # A killed instance is replaced in its zone; the replacement counts the restart.
    lost = next(iter(pids))
    os.kill(pids[lost], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = rows(strait_cli(strait, "instances", endpoint).stdout)
        if len(now) == 2 and lost not in {row[0] for row in now} and all(row[4] == "InService" for row in now):
            break
        time.sleep(0.3)
    assert sorted(row[6] for row in now) == ["0", "1"], now


def test_logs_follow_prints_new_lines(strait, resources):
    endpoint = resources.endpoint()
    follower = subprocess.Popen(
        [str(strait_binary()), "logs", endpoint, "--follow", "--data-dir", str(strait.data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = follower.stdout.readline()
        assert "listening on" in first
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_errors_are_clear(strait, tmp_path):
    result = strait_cli(strait, "instances", "no-such-endpoint", check=False)
    assert result.returncode != 0 and 'Could not find endpoint "no-such-endpoint"' in result.stderr
    result = strait_cli(strait, "logs", "no-such-endpoint", "--instance", "../../etc/passwd", check=False)
    assert result.returncode != 0
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([str(strait_binary()), "endpoints", "--data-dir", str(empty)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "No running strait serve" in result.stderr


def test_admin_api_requires_a_signature(strait):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(strait.endpoint + "/strait/endpoints", timeout=10)
    assert error.value.code == 403

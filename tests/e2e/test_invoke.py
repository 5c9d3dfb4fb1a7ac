"""The data plane: InvokeEndpoint through the regional and the zonal runtime
endpoints, with boto3, the AWS CLI and raw sockets.

Most tests use a small Python model server (the `model_image` fixture) that
answers every invocation with its own identity (bind address, port, pid), so a
test can tell which instance, and which zone, served a call.
"""

import collections
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
import uuid
from urllib.parse import urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import (ACCOUNT_ID, REGION, ZONES, Resources, error_summary, is_alive, process_identity,
                      strait_binary)

REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # x-amzn-RequestId, UUID-shaped
MAX_PAYLOAD = 6 * 1024 * 1024  # 6291456 bytes: InvokeEndpoint's body limit
ZONE_A, ZONE_B, ZONE_C = sorted(ZONES)

MODEL_SCRIPT = r'''#!/usr/bin/env python3
"""A SageMaker-contract model server for Strait's e2e tests.

GET /ping -> 200. POST /invocations -> 200 {"address", "port", "pid", "body"}, except
body b"fail" -> 500 "model failure" and body b"sleep" -> answers after 5 s.
Started as `<image> serve`; a script named slow-* waits 5 s before listening.
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDRESS = os.environ.get("STRAIT_BIND_ADDRESS", "0.0.0.0")
PORT = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, *args):
        pass

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, b"{}")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self):
        body = self._body()
        if self.path != "/invocations":
            self._send(404, b"not found", "text/plain")
            return
        if body == b"fail":
            self._send(500, b"model failure", "text/plain")
            return
        if body == b"sleep":
            time.sleep(5)
        identity = {"address": ADDRESS, "port": PORT, "pid": os.getpid(),
                    "body": body[:100].decode("utf-8", "replace")}
        self._send(200, json.dumps(identity).encode())


if __name__ == "__main__":
    if os.path.basename(sys.argv[0]).startswith("slow"):
        time.sleep(5)
    ThreadingHTTPServer((ADDRESS, PORT), Handler).serve_forever()
'''


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------

def _write_executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.fixture(scope="module")
def model_image(tmp_path_factory):
    """Absolute path of the identity-echoing test model server."""
    return _write_executable(tmp_path_factory.mktemp("images") / "model", MODEL_SCRIPT)


@pytest.fixture(scope="module")
def slow_image(tmp_path_factory):
    """The same model server, waiting 5 s before it listens (endpoint stays Creating)."""
    return _write_executable(tmp_path_factory.mktemp("images") / "slow-model", MODEL_SCRIPT)


@pytest.fixture(scope="module")
def runtime_urls(strait):
    return strait.runtime_endpoints()


@pytest.fixture(scope="module")
def runtimes(strait, runtime_urls):
    """sagemaker-runtime clients by listener: 'regional', 'us-east-1a', ..."""
    return {name: strait.runtime(url) for name, url in runtime_urls.items()}


@pytest.fixture(scope="module")
def echo_endpoint(sm, ec2):
    """One strait/echo endpoint (a single AllTraffic instance) shared by the module."""
    res = Resources(sm, ec2)
    try:
        yield res.endpoint()
    finally:
        res.cleanup()


def invoke(rt, endpoint, body=b"{}", **kwargs):
    """InvokeEndpoint; returns (body bytes, response)."""
    response = rt.invoke_endpoint(EndpointName=endpoint, Body=body, **kwargs)
    return response["Body"].read(), response


def identity(rt, endpoint, **kwargs):
    """Invokes a `model_image` endpoint with a unique body; returns the answering
    instance's identity, after checking the answer is the one to this call."""
    tag = uuid.uuid4().hex
    data, response = invoke(rt, endpoint, body=tag.encode(), **kwargs)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200, response
    assert re.fullmatch(REQUEST_ID, response["ResponseMetadata"]["RequestId"]), response
    answer = json.loads(data)
    assert answer["body"] == tag, f"the answer to another call: {answer}"
    return answer


def answers(rt, endpoint, calls):
    """`calls` invocations; returns (identities, failures)."""
    seen, failures = [], []
    for _ in range(calls):
        try:
            seen.append(identity(rt, endpoint))
        except Exception as exc:  # count every kind of failure the client sees
            failures.append(repr(exc))
    return seen, failures


def zone_of(address):
    for zone, (_, prefix) in ZONES.items():
        if address.startswith(prefix):
            return zone
    return None


def assert_serves(rt, endpoint):
    """A normal call through `rt` succeeds (after a bad request on that listener)."""
    data, response = invoke(rt, endpoint, body=b"still,serving", ContentType="text/csv")
    assert data == b"still,serving", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def model_error_fields(exc):
    """OriginalStatusCode, OriginalMessage and LogStreamArn of a ModelError: botocore
    puts a modelled error's members at the top of e.response (older: under Error)."""
    response = exc.response
    return {key: response.get(key, response.get("Error", {}).get(key))
            for key in ("OriginalStatusCode", "OriginalMessage", "LogStreamArn")}


def instance_addresses(strait, endpoint):
    """{pid: STRAIT_BIND_ADDRESS} of the endpoint's live instances (pid files + /proc)."""
    found = {}
    for pid, _ in strait.instance_pids(endpoint).values():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        found[pid] = env.get(b"STRAIT_BIND_ADDRESS", b"").decode()
    return found


def raw_exchange(url, payload, timeout=5.0):
    """Sends raw bytes to a listener; returns whatever comes back until it closes
    or `timeout` passes (b"" if it closed without answering)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(payload)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received:
                break
        return received


# --------------------------------------------------------------------------
# 1. strait/echo through every listener, boto3 and the AWS CLI
# --------------------------------------------------------------------------

@pytest.mark.parametrize("listener", ["regional", ZONE_A, ZONE_B, ZONE_C])
def test_echo_through_regional_and_zonal_endpoints(runtimes, echo_endpoint, listener):
    data, response = invoke(
        runtimes[listener], echo_endpoint, body=b"1,2,3\n4,5,6", ContentType="text/csv",
        Accept="text/csv", CustomAttributes="trace=abc;x=1", InferenceId="inference-1")
    assert data == b"1,2,3\n4,5,6"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ContentType"] == "text/csv"
    assert response["CustomAttributes"] == "trace=abc;x=1"
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_runtime_block_lists_regional_and_zonal_endpoints(strait, runtime_urls):
    port = urlsplit(strait.endpoint).port
    assert runtime_urls == {
        "regional": strait.endpoint,
        ZONE_A: f"http://127.0.1.1:{port}",
        ZONE_B: f"http://127.0.2.1:{port}",
        ZONE_C: f"http://127.0.3.1:{port}",
    }


@pytest.mark.parametrize("listener", ["regional", ZONE_B])
def test_echo_through_aws_cli(cli, runtime_urls, echo_endpoint, tmp_path, listener):
    infile, outfile = tmp_path / "in.csv", tmp_path / "out.json"
    infile.write_bytes(b"7,8,9\n")
    printed = cli.runtime(
        "invoke-endpoint", "--endpoint-name", echo_endpoint, "--body", f"fileb://{infile}",
        "--content-type", "text/csv", "--custom-attributes", "cli=yes", str(outfile),
        endpoint_url=runtime_urls[listener])
    assert outfile.read_bytes() == b"7,8,9\n"
    assert printed["ContentType"] == "text/csv", printed
    assert printed["InvokedProductionVariant"] == "AllTraffic", printed
    assert printed.get("CustomAttributes") == "cli=yes", printed


# --------------------------------------------------------------------------
# 2./3. Zones: affinity, spill-over, loss of a zone
# --------------------------------------------------------------------------

def test_zone_affinity_and_spill_over(strait, resources, runtimes, model_image):
    endpoint = resources.endpoint(resources.endpoint_config(
        resources.model(image=model_image, zones=[ZONE_A, ZONE_B]), count=4))
    placed = instance_addresses(strait, endpoint)
    assert len(placed) == 4, (placed, strait.instance_pids(endpoint))
    assert all(int(a.rsplit(".", 1)[1]) >= 10 for a in placed.values()), placed
    by_zone = collections.Counter(zone_of(a) for a in placed.values())
    assert by_zone == {ZONE_A: 2, ZONE_B: 2}, placed

    for zone, calls in ((ZONE_A, 40), (ZONE_B, 40)):
        seen, failures = answers(runtimes[zone], endpoint, calls)
        assert failures == []
        wrong = [s for s in seen if zone_of(s["address"]) != zone]
        assert wrong == [], f"{len(wrong)} of {calls} calls through {zone} left the zone: {wrong[:3]}"
        in_zone = {a for a in placed.values() if zone_of(a) == zone}
        assert {s["address"] for s in seen} == in_zone, "not every instance of the zone was used"
        assert {s["pid"] for s in seen} <= set(placed)

    seen, failures = answers(runtimes["regional"], endpoint, 60)
    assert failures == []
    assert collections.Counter(zone_of(s["address"]) for s in seen).keys() == {ZONE_A, ZONE_B}

    # Zone c has no instance of this endpoint: its calls spill over to a and b.
    seen, failures = answers(runtimes[ZONE_C], endpoint, 20)
    assert failures == []
    assert {zone_of(s["address"]) for s in seen} <= {ZONE_A, ZONE_B}


def test_default_placement_spans_all_zones(strait, resources, runtimes, model_image):
    endpoint = resources.endpoint(resources.endpoint_config(resources.model(image=model_image),
                                                            count=3))
    placed = instance_addresses(strait, endpoint)
    assert sorted(zone_of(a) for a in placed.values()) == [ZONE_A, ZONE_B, ZONE_C], placed
    for zone in ZONES:
        seen, failures = answers(runtimes[zone], endpoint, 5)
        assert failures == []
        assert {zone_of(s["address"]) for s in seen} == {zone}, seen
        assert {(s["address"], s["pid"]) for s in seen} <= {(a, p) for p, a in placed.items()}


def test_zone_loss_moves_calls_to_the_other_zone(strait, resources, runtimes, model_image):
    endpoint = resources.endpoint(resources.endpoint_config(
        resources.model(image=model_image, zones=[ZONE_A, ZONE_B]), count=4))
    placed = instance_addresses(strait, endpoint)
    zone_a_pids = [pid for pid, address in placed.items() if zone_of(address) == ZONE_A]
    assert len(zone_a_pids) == 2, placed

    # Warm up: the listener now holds (pooled) connections to zone a's instances.
    seen, failures = answers(runtimes[ZONE_A], endpoint, 10)
    assert failures == [] and {zone_of(s["address"]) for s in seen} == {ZONE_A}

    # One of zone a's instances is lost: zone a's calls stay in zone a.
    lost, survivor = zone_a_pids
    kill_and_wait(lost)
    seen, failures = answers(runtimes[ZONE_A], endpoint, 20)
    assert failures == [], f"{len(failures)} of 20 calls failed after {lost} was killed"
    # Answered in zone a: by the survivor, or by the instance that replaces the lost one.
    assert lost not in {s["pid"] for s in seen} and {zone_of(s["address"]) for s in seen} == {ZONE_A}, seen

    # The whole zone is lost.
    kill_and_wait(survivor)
    seen, failures = answers(runtimes[ZONE_A], endpoint, 40)
    assert failures == [], f"{len(failures)} of 40 calls failed after zone a was lost: {failures[:3]}"
    from_killed = [s for s in seen if s["pid"] in zone_a_pids]
    assert from_killed == []
    # Until zone a has an instance again (a replacement), its calls go to zone b; then they come home.
    zones = [zone_of(s["address"]) for s in seen]
    first_zone_a = next((i for i, zone in enumerate(zones) if zone == ZONE_A), len(zones))
    assert set(zones[:first_zone_a]) <= {ZONE_B} and set(zones[first_zone_a:]) <= {ZONE_A}, zones

    seen, failures = answers(runtimes["regional"], endpoint, 20)
    assert failures == [], f"regional: {len(failures)} of 20 calls failed: {failures[:3]}"
    assert not [s for s in seen if s["pid"] in zone_a_pids]


def test_hung_instance_leaves_routing_and_is_replaced(strait, resources, runtimes, model_image):
    """A process that is alive but no longer answers (SIGSTOP) fails its /ping: it leaves the routing snapshot
    at the first failed ping, is stopped after three, and a replacement takes its place in the same zone."""
    endpoint = resources.endpoint(resources.endpoint_config(
        resources.model(image=model_image, zones=[ZONE_A]), count=2))
    placed = instance_addresses(strait, endpoint)
    hung, healthy = list(placed)
    os.kill(hung, signal.SIGSTOP)
    try:
        # No call is in flight on it, so its failed pings count: out of routing, then stopped.
        deadline = time.monotonic() + 30
        while hung in instance_addresses(strait, endpoint) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hung not in instance_addresses(strait, endpoint), "the hung instance was not stopped"
        deadline = time.monotonic() + 30
        while len(instance_addresses(strait, endpoint)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        replaced = instance_addresses(strait, endpoint)
        assert len(replaced) == 2 and healthy in replaced, replaced
        assert all(zone_of(address) == ZONE_A for address in replaced.values())
        seen, failures = answers(runtimes[ZONE_A], endpoint, 10)
        assert failures == [] and hung not in {s["pid"] for s in seen}
        assert resources.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGCONT)


def kill_and_wait(pid, timeout=5.0):
    """SIGKILL an instance process and wait until it has died."""
    identity = process_identity(pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while identity and is_alive(identity) and time.monotonic() < deadline:
        time.sleep(0.02)


# --------------------------------------------------------------------------
# 4. Variant weights and TargetVariant
# --------------------------------------------------------------------------

def test_variant_weights_and_target_variant(resources, runtimes):
    config = resources.endpoint_config(variants=[
        resources.variant(resources.model(), name="v1", weight=1.0),
        resources.variant(resources.model(), name="v2", weight=3.0),
    ])
    endpoint = resources.endpoint(config)
    rt = runtimes["regional"]

    counts = collections.Counter(
        invoke(rt, endpoint, body=b"x")[1]["InvokedProductionVariant"] for _ in range(200))
    assert set(counts) == {"v1", "v2"}, counts
    assert 0.6 <= counts["v2"] / 200 <= 0.9, counts

    for target in ("v1", "v2"):
        pinned = collections.Counter(
            invoke(runtimes[ZONE_A], endpoint, body=b"x", TargetVariant=target)[1]
            ["InvokedProductionVariant"] for _ in range(20))
        assert pinned == {target: 20}, pinned


# --------------------------------------------------------------------------
# 5./6. Model errors and timeouts
# --------------------------------------------------------------------------

def test_model_error_carries_original_status_and_message(resources, runtimes, model_image):
    endpoint = resources.endpoint(resources.endpoint_config(resources.model(image=model_image)))
    rt = runtimes["regional"]
    with pytest.raises(ClientError) as info:
        invoke(rt, endpoint, body=b"fail")
    code, status, message = error_summary(info.value)
    assert (code, status) == ("ModelError", 424), info.value.response
    fields = model_error_fields(info.value)
    assert fields["OriginalStatusCode"] == 500, info.value.response
    assert fields["OriginalMessage"] == "model failure", info.value.response
    assert fields["LogStreamArn"], info.value.response
    assert fields["LogStreamArn"].startswith(f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:"), fields
    assert endpoint in fields["LogStreamArn"], fields
    # The server, and the instance, keep serving.
    assert identity(rt, endpoint)["pid"] > 0
    assert identity(runtimes[ZONE_C], endpoint)["pid"] > 0


def test_invocation_timeout(strait_factory, model_image):
    server = strait_factory.start(args=["--invocation-timeout", "2"])
    res = server.resources()
    endpoint = res.endpoint(res.endpoint_config(res.model(image=model_image)))
    rt = server.runtime()
    started = time.monotonic()
    with pytest.raises(ClientError) as info:
        invoke(rt, endpoint, body=b"sleep")
    took = time.monotonic() - started
    code, status, message = error_summary(info.value)
    assert (code, status) == ("ModelError", 424), info.value.response
    assert "timed out while waiting for a response from container" in message, message
    assert 1.5 <= took < 4.5, f"the 2 s invocation timeout fired after {took:.1f} s"
    # The next calls are answered, each with its own answer, while the instance is
    # still sleeping on the first one and after that late answer was sent (5 s):
    # the timed-out connection must not be reused.
    for _ in range(3):
        identity(rt, endpoint)
    time.sleep(max(0.0, started + 5.5 - time.monotonic()))
    for _ in range(3):
        identity(rt, endpoint)
    assert server.running(), server.output()


def test_full_zone_spills_to_another_zone(strait_factory, model_image):
    """With --instance-capacity 1, a call in flight fills zone a's only instance: the next call through zone a's
    endpoint is served in zone b; once the long call is answered, calls stay in zone a again."""
    import threading

    server = strait_factory.start(args=["--instance-capacity", "1"])
    res = server.resources()
    endpoint = res.endpoint(res.endpoint_config(res.model(image=model_image, zones=[ZONE_A, ZONE_B]), count=2))
    urls = server.runtime_endpoints()
    zone_a = server.runtime(urls[ZONE_A])
    assert {zone_of(identity(zone_a, endpoint)["address"]) for _ in range(5)} == {ZONE_A}
    slow = threading.Thread(target=invoke, args=(server.runtime(urls[ZONE_A]), endpoint), kwargs={"body": b"sleep"})
    slow.start()
    try:
        time.sleep(1.0)  # the sleeping call is in flight on zone a's instance
        assert {zone_of(identity(zone_a, endpoint)["address"]) for _ in range(3)} == {ZONE_B}
    finally:
        slow.join(timeout=15)
    assert {zone_of(identity(zone_a, endpoint)["address"]) for _ in range(5)} == {ZONE_A}


@pytest.mark.parametrize("window,polls", [("10000", True), ("0", False)])
def test_busy_polling_on_and_off(strait_factory, model_image, window, polls):
    """Calls one at a time make the event loops poll before sleeping (counted in /metrics) once enough have come
    alone; --busy-poll-us 0 never polls. Every call is answered either way."""
    server = strait_factory.start(args=["--busy-poll-us", window])
    res = server.resources()
    endpoint = res.endpoint(res.endpoint_config(res.model(image=model_image, zones=[ZONE_A])))
    zone_a = server.runtime(server.runtime_endpoints()[ZONE_A])
    assert {zone_of(identity(zone_a, endpoint)["address"]) for _ in range(80)} == {ZONE_A}
    assert (sum(server.busy_polls().values()) > 0) == polls


@pytest.mark.parametrize("bad", ["-1", "10001", "fast"])
def test_busy_poll_window_out_of_range(tmp_path, bad):
    completed = subprocess.run(
        [str(strait_binary()), "serve", f"--busy-poll-us={bad}", "--data-dir", str(tmp_path / "refused"),
         "--listen", "127.0.0.1:0"],
        capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert completed.returncode == 64, completed
    assert b"busy-poll-us" in completed.stderr, completed.stderr


# --------------------------------------------------------------------------
# 7. Bad input: every case is followed by a successful call on the same listener
# --------------------------------------------------------------------------

@pytest.mark.parametrize("listener", ["regional", ZONE_A])
def test_unsigned_invocation_is_refused(runtimes, runtime_urls, echo_endpoint, listener):
    parts = urlsplit(runtime_urls[listener])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", f"/endpoints/{echo_endpoint}/invocations", body=b"1,2",
                           headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        status, headers, body = response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()
    assert status == 403, (status, headers, body)
    error_type = headers.get("x-amzn-ErrorType", "") or headers.get("X-Amzn-ErrorType", "")
    with_body = (json.loads(body).get("__type", "") if body.strip().startswith(b"{") else "")
    assert "MissingAuthenticationTokenException" in error_type + with_body, (headers, body)
    assert_serves(runtimes[listener], echo_endpoint)


@pytest.mark.parametrize("listener", ["regional", ZONE_B])
def test_unknown_endpoint(runtimes, echo_endpoint, unique_name, aws_error, listener):
    name = unique_name("missing")
    with aws_error("ValidationError", 400, f"Endpoint {name} of account {ACCOUNT_ID} not found."):
        invoke(runtimes[listener], name)
    assert_serves(runtimes[listener], echo_endpoint)


def test_body_size_limit(runtimes, echo_endpoint, aws_error):
    rt = runtimes[ZONE_A]
    with aws_error("ValidationError", 400, str(MAX_PAYLOAD)):
        invoke(rt, echo_endpoint, body=b"x" * (7 * 1024 * 1024))
    assert_serves(rt, echo_endpoint)
    # Exactly 6 MiB is allowed.
    data, _ = invoke(rt, echo_endpoint, body=b"y" * MAX_PAYLOAD)
    assert len(data) == MAX_PAYLOAD
    assert_serves(rt, echo_endpoint)


def test_unknown_target_variant(runtimes, echo_endpoint, aws_error):
    rt = runtimes[ZONE_C]
    with aws_error("ValidationError", 400, "NoSuchVariant"):
        invoke(rt, echo_endpoint, TargetVariant="NoSuchVariant")
    assert_serves(rt, echo_endpoint)


@pytest.mark.parametrize("listener", ["regional", ZONE_A])
def test_client_disconnects_mid_body(strait, runtimes, runtime_urls, echo_endpoint, listener):
    parts = urlsplit(runtime_urls[listener])
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            f"POST /endpoints/{echo_endpoint}/invocations HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\n"
            .encode() + b"0123456789")
    assert_serves(runtimes[listener], echo_endpoint)
    assert strait.running(), strait.output()


@pytest.mark.parametrize("listener", ["regional", ZONE_A])
def test_garbage_request(strait, runtimes, runtime_urls, echo_endpoint, listener):
    received = raw_exchange(runtime_urls[listener], b"\x00\x01GARBAGE\r\n\r\n")
    assert received == b"" or received.startswith(b"HTTP/1.1 400"), received[:200]
    assert_serves(runtimes[listener], echo_endpoint)
    assert strait.running(), strait.output()


def test_endpoint_not_in_service(resources, runtimes, echo_endpoint, slow_image, aws_error):
    rt = runtimes[ZONE_B]
    creating = resources.endpoint(
        resources.endpoint_config(resources.model(image=slow_image)), wait=False)
    assert resources.sm.describe_endpoint(EndpointName=creating)["EndpointStatus"] == "Creating"
    with aws_error("ValidationError", 400, "Creating") as seen:
        invoke(rt, creating)
    assert creating in seen["message"]
    assert_serves(rt, echo_endpoint)

    failed, described = resources.failing_endpoint()
    assert described["EndpointStatus"] == "Failed"
    with aws_error("ValidationError", 400, "Failed"):
        invoke(rt, failed)
    assert_serves(rt, echo_endpoint)

    # Once the slow instance listens, the endpoint is InService and answers.
    resources.wait_in_service(creating)
    assert identity(rt, creating)["address"].startswith("127.0.")


@pytest.mark.parametrize("method,path", [("GET", "/"), ("GET", "/ping"), ("POST", "/"),
                                         ("POST", "/endpoints/x/y/invocations")])
def test_zonal_listener_serves_only_invocations(runtimes, runtime_urls, echo_endpoint,
                                                method, path):
    parts = urlsplit(runtime_urls[ZONE_A])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None)
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status == 404, (method, path, status, body)
    assert_serves(runtimes[ZONE_A], echo_endpoint)


# --------------------------------------------------------------------------
# Instances of a custom image can be stopped gracefully
# --------------------------------------------------------------------------

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def signal_masks(pid):
    """(blocked, ignored) signal bit masks of a process."""
    masks = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("SigBlk", "SigIgn"):
                masks[key] = int(value.split()[0], 16)
    return masks["SigBlk"], masks["SigIgn"]


def test_instance_pid_files(strait, resources, model_image):
    """<data-dir>/instances/<endpoint>/<instance-id>.pid: line 1 the pid, line 2 its start time (field 22 of
    /proc/<pid>/stat), which lets a restarted server tell a leftover instance from a process that reused the pid."""
    endpoint = resources.endpoint(resources.endpoint_config(resources.model(image=model_image),
                                                            count=2))
    files = sorted(strait.instance_dir(endpoint).glob("*.pid"))
    assert len(files) == 2, files
    pids = set()
    for path in files:
        assert path.stem.startswith("i-"), path
        lines = path.read_text().splitlines()
        assert lines[0].isdigit() and is_alive(process_identity(int(lines[0]))), (path, lines)
        proc_stat = Path(f"/proc/{lines[0]}/stat").read_text()
        start_time = proc_stat[proc_stat.rindex(")") + 2:].split()[19]
        assert lines[1:2] == [start_time], f"{path}: {lines}"
        pids.add(int(lines[0]))
    assert identity(strait.runtime(), endpoint)["pid"] in pids


def test_instance_stops_on_sigterm(strait_factory, model_image):
    """An instance starts with SIGTERM neither blocked nor ignored, so DeleteEndpoint
    stops it well before --instance-stop-grace (8 s here) runs out."""
    server = strait_factory.start(args=["--instance-stop-grace", "8"])
    res = server.resources()
    endpoint = res.endpoint(res.endpoint_config(res.model(image=model_image), count=2))
    pids = [pid for pid, _ in server.instance_pids(endpoint).values()]
    assert len(pids) == 2
    assert identity(server.runtime(), endpoint)["pid"] in pids
    masks = {pid: tuple(f"{m:016x}" for m in signal_masks(pid)) for pid in pids}
    started = time.monotonic()
    res.sm.delete_endpoint(EndpointName=endpoint)
    res.wait_deleted(endpoint)
    took = time.monotonic() - started
    assert all(int(blocked, 16) & SIGTERM_BIT == 0 and int(ignored, 16) & SIGTERM_BIT == 0
               for blocked, ignored in masks.values()), \
        f"instances start with SIGTERM blocked/ignored (SigBlk, SigIgn: {masks}); " \
        f"DeleteEndpoint took {took:.1f} s"
    assert took < 5, f"DeleteEndpoint took {took:.1f} s: instances ignored SIGTERM"


def test_zones_from_a_configuration_file(strait_factory, model_image, tmp_path):
    """--config defines other zones and subnets: every zone gets its runtime endpoint on the first host of its
    subnet, instances land in the model's subnets, and calls stay in the caller's zone."""
    config = tmp_path / "strait.json"
    config.write_text(json.dumps({"zones": [
        {"name": "us-east-1x", "id": "use1-az8", "subnets": [{"id": "subnet-x1", "cidr": "127.0.5.0/24"}]},
        {"name": "us-east-1y", "id": "use1-az9", "subnets": [{"id": "subnet-y1", "cidr": "127.0.6.0/24"}]},
    ]}))
    server = strait_factory.start(args=["--config", str(config)])
    endpoints = server.runtime_endpoints(zones=("us-east-1x", "us-east-1y"))
    assert urlsplit(endpoints["us-east-1x"]).hostname == "127.0.5.1"
    assert urlsplit(endpoints["us-east-1y"]).hostname == "127.0.6.1"
    res = server.resources()
    model = res.model(image=model_image)
    res.sm.delete_model(ModelName=model)
    res.sm.create_model(ModelName=model, PrimaryContainer={"Image": model_image},
                        VpcConfig={"SecurityGroupIds": [res.default_security_group()],
                                   "Subnets": ["subnet-x1", "subnet-y1"]})
    endpoint = res.endpoint(res.endpoint_config(model, count=2))
    for zone, prefix in (("us-east-1x", "127.0.5."), ("us-east-1y", "127.0.6.")):
        rt = server.runtime(endpoints[zone])
        for _ in range(10):
            assert identity(rt, endpoint)["address"].startswith(prefix)


def test_a_bad_configuration_file_stops_the_start(tmp_path):
    """A configuration that cannot work is refused before anything starts, with a message saying what is wrong."""
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"zones": [
        {"name": "a", "subnets": [{"id": "s1", "cidr": "127.0.0.0/16"}]},
        {"name": "b", "subnets": [{"id": "s2", "cidr": "127.0.2.0/24"}]},
    ]}))
    result = subprocess.run(
        [str(strait_binary()), "serve", "--config", str(config), "--data-dir", str(tmp_path / "data"),
         "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "overlaps subnet 's1'" in result.stdout + result.stderr


def test_a_killed_instance_is_replaced(strait, resources, model_image):
    """An instance whose process dies is replaced in its zone while the endpoint stays InService and every call
    succeeds."""
    endpoint = resources.endpoint(resources.endpoint_config(resources.model(image=model_image), count=2))
    before = strait.instance_pids(endpoint)
    victim_id, (victim_pid, _) = sorted(before.items())[0]
    os.kill(victim_pid, signal.SIGKILL)
    rt = strait.runtime()
    failures = 0
    deadline = time.monotonic() + 20
    replaced = False
    while time.monotonic() < deadline and not replaced:
        try:
            identity(rt, endpoint)
        except ClientError:
            failures += 1
        now = strait.instance_pids(endpoint)
        replaced = len(now) == 2 and victim_id not in now
        time.sleep(0.1)
    assert replaced, strait.instance_pids(endpoint)
    assert failures == 0
    assert resources.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    for _ in range(10):
        identity(rt, endpoint)


# --------------------------------------------------------------------------
# HTTP/1.1 framing on raw sockets: pipelining, chunked bodies, 100-continue,
# and heads Strait refuses rather than guesses at
# --------------------------------------------------------------------------

def signed_head(strait, url, endpoint, body, framing="length", extra=None):
    """The head of an InvokeEndpoint request signed by botocore, as raw bytes."""
    parts = urlsplit(url)
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=f"{url}/endpoints/{endpoint}/invocations", data=body,
        headers={"Content-Type": "text/csv"})
    key, secret = strait.credentials()
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "sagemaker",
                            REGION).add_auth(request)
    headers = {k: v for k, v in request.prepare().headers.items() if k.lower() != "content-length"}
    headers["Host"] = parts.netloc
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(len(body))
    headers.update(extra or {})
    lines = [f"POST /endpoints/{endpoint}/invocations HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(reader):
    """(status, headers, body) of the next response on a socket file (Content-Length framed)."""
    status_line = reader.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("listener", ["regional", ZONE_A])
def test_pipelined_invocations_are_answered_in_order(strait, runtime_urls, echo_endpoint, listener):
    url = runtime_urls[listener]
    bodies = [b"first,1", b"second,2", b"third,3"]
    payload = b"".join(signed_head(strait, url, echo_endpoint, body) + body for body in bodies)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(payload)  # all three before reading any answer
        reader = sock.makefile("rb")
        answers = [read_response(reader) for _ in bodies]
    assert [(status, body) for status, _, body in answers] == [(200, body) for body in bodies]
    ids = [headers["x-amzn-requestid"] for _, headers, _ in answers]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(REQUEST_ID, request_id) for request_id in ids), ids


@pytest.mark.parametrize("listener", ["regional", ZONE_B])
def test_chunked_invocation_body(strait, runtime_urls, echo_endpoint, listener):
    url = runtime_urls[listener]
    body = b"1,2,3\n4,5,6"
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece) for piece in (body[:4], body[4:]))
    payload = signed_head(strait, url, echo_endpoint, body, framing="chunked") + chunks + b"0\r\nX-Trailer: t\r\n\r\n"
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        for index in range(0, len(payload), 7):  # in small pieces, so every boundary is crossed
            sock.sendall(payload[index:index + 7])
        status, _, answer = read_response(sock.makefile("rb"))
    assert (status, answer) == (200, body)


def test_expect_100_continue(strait, runtime_urls, echo_endpoint):
    url = runtime_urls[ZONE_C]
    body = b"7,8,9"
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(signed_head(strait, url, echo_endpoint, body, extra={"Expect": "100-continue"}))
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(body)
        status, _, answer = read_response(reader)
    assert (status, answer) == (200, body)


@pytest.mark.parametrize("payload, status", [
    # Request smuggling shapes: two framings, or two lengths.
    (b"POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (b"POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n", 400),
    (b"POST /endpoints/e/invocations HTTP/1.1\r\nBad\x01Name: x\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
])
@pytest.mark.parametrize("listener", ["regional", ZONE_A])
def test_unreadable_heads_are_refused_and_the_connection_closed(strait, runtimes, runtime_urls, echo_endpoint,
                                                                 listener, payload, status):
    parts = urlsplit(runtime_urls[listener])
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        try:
            sock.sendall(payload + b"GET /ping HTTP/1.1\r\n\r\n")  # a request after it is never read
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    assert received.startswith(f"HTTP/1.1 {status} ".encode()), received[:300]
    assert b"connection: close" in received.lower()
    head, _, rest = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))
    assert len(rest) == length, received  # one response: the request after it got no answer
    assert_serves(runtimes[listener], echo_endpoint)

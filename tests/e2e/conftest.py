"""Shared fixtures for Strait's end-to-end suite.

Every test talks to a real `strait serve` process through real clients: boto3,
the AWS CLI (as a subprocess), or raw HTTP requests signed by botocore itself.

Fixtures:
  strait           one server for the whole session (own temp data dir, free port)
  strait_factory   starts extra servers for one test (restart/shutdown tests);
                   start(args=[...]) passes extra `strait serve` options
  sm / sm_raw      boto3 SageMaker clients for `strait` (sm_raw skips client-side
                   parameter validation so the server's own validation is tested)
  resources        creates models/configs/endpoints on `strait` and removes them
  cli              runs `aws sagemaker ...` against `strait`
  signed_request   sends hand-built (optionally broken) SigV4 requests
  unique_name      uuid-based resource names
  aws_error        `with aws_error(code, status, *substrings): ...` for boto3 calls
  server_still_serves  after the test, asserts the server still answers

Data plane (InvokeEndpoint): server.runtime_endpoints() parses the `Runtime:` block
(regional + one zonal URL per zone), server.runtime(url) is a signed
sagemaker-runtime client, server.instance_pids(endpoint) reads instance pid files.
"""

import configparser
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ECHO_IMAGE = "strait/echo"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/StraitExecutionRole"
INSTANCE_TYPE = "ml.m5.large"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

START_TIMEOUT = 30.0  # seconds until the "API endpoint:" line must appear
STOP_TIMEOUT = 10.0  # seconds a graceful shutdown may take
KILL_TIMEOUT = 5.0
STATUS_TIMEOUT = 60.0  # seconds an endpoint may take to reach a wanted status
FAST_WAIT = {"Delay": 1, "MaxAttempts": 60}
POLL_INTERVAL = 0.25

ENDPOINT_LINE = re.compile(r"API endpoint:\s+(http://\S+)")
RUNTIME_LINE = re.compile(r"\s*(?:Runtime:)?\s*(http://\S+)\s+\((regional|zonal, (\S+))\)\s*$")

# The zones `strait serve` simulates: zone -> (subnet id, address prefix of its /24).
ZONES = {
    "us-east-1a": ("subnet-00000000000000001", "127.0.1."),
    "us-east-1b": ("subnet-00000000000000002", "127.0.2."),
    "us-east-1c": ("subnet-00000000000000003", "127.0.3."),
}
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


# --------------------------------------------------------------------------
# Environment hygiene: nothing from the developer's own AWS setup may leak
# into boto3, the CLI or the server.
# --------------------------------------------------------------------------

def pytest_configure(config):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def strait_binary():
    return Path(os.environ.get("STRAIT_BIN") or REPO_ROOT / ".build" / "debug" / "strait")


def make_unique_name(prefix="t"):
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    assert NAME_PATTERN.match(name), name
    return name


def error_summary(exc):
    """(code, http status, message) of a botocore ClientError."""
    return (
        exc.response["Error"]["Code"],
        exc.response["ResponseMetadata"]["HTTPStatusCode"],
        exc.response["Error"].get("Message", ""),
    )


@contextlib.contextmanager
def expect_aws_error(code, status=400, *substrings):
    """Asserts the block raises a ClientError with this code, HTTP status and
    message substrings; yields a dict that receives code/status/message."""
    seen = {}
    with pytest.raises(ClientError) as info:
        yield seen
    got_code, got_status, message = error_summary(info.value)
    seen.update(code=got_code, status=got_status, message=message)
    assert (got_code, got_status) == (code, status), f"unexpected error: {info.value}"
    for text in substrings:
        assert text in message, f"{text!r} not in error message {message!r}"


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def _proc_stat(pid):
    """(ppid, starttime) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3), so field N is fields[N - 3].
    return int(fields[1]), int(fields[19])


def process_identity(pid):
    """A (pid, starttime) pair that survives PID reuse checks, or None."""
    stat = _proc_stat(pid)
    return None if stat is None else (pid, stat[1])


def is_alive(identity):
    pid, start = identity
    stat = _proc_stat(pid)
    if stat is None or stat[1] != start:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its reaping is pending


def descendants(root_pid):
    """Identities of every live descendant of root_pid (a /proc scan of PPid)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry))
    found, queue = [], list(children.get(root_pid, []))
    while queue:
        pid = queue.pop()
        identity = process_identity(pid)
        if identity is not None:
            found.append(identity)
        queue.extend(children.get(pid, []))
    return found


class StraitServer:
    """One `strait serve` process, its captured output and its credentials."""

    def __init__(self, data_dir, args=(), env=None):
        self.data_dir = Path(data_dir)
        self.args = [str(a) for a in args]  # extra `strait serve` options
        self.env = env  # extra environment variables
        self.proc = None
        self.endpoint = None
        self._lines = []  # (stream, line)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._readers = []
        self._seen_children = set()

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        binary = strait_binary()
        if not binary.is_file():
            pytest.fail(
                f"strait binary not found at {binary}: run `swift build` or set STRAIT_BIN",
                pytrace=False,
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                str(binary), "serve",
                "--data-dir", str(self.data_dir),
                "--listen", "127.0.0.1:0",
                "--region", REGION,
                "--account-id", ACCOUNT_ID,
                *self.args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(self.env or {})},
            start_new_session=True,  # a Ctrl-C at the terminal reaches pytest only
        )
        for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            reader = threading.Thread(target=self._read, args=(name, stream), daemon=True)
            reader.start()
            self._readers.append(reader)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._join_readers()
                pytest.fail(f"strait exited with {self.proc.returncode} before it was ready\n"
                            f"{self.output()}", pytrace=False)
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no 'API endpoint:' line within {START_TIMEOUT:.0f} s\n"
                            f"{self.output()}", pytrace=False)
        return self

    def _read(self, name, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self._lines.append((name, line))
            match = ENDPOINT_LINE.search(line) if name == "stdout" else None
            if match and not self._ready.is_set():
                self.endpoint = match.group(1).rstrip("/")
                self._ready.set()
        stream.close()

    def _join_readers(self):
        for reader in self._readers:
            reader.join(timeout=2)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends `sig` and waits up to `timeout`. Returns (exit code, seconds taken);
        the exit code is None when the process had to be killed."""
        if not self.running():
            return self.proc.returncode if self.proc else None, 0.0
        self._seen_children.update(descendants(self.proc.pid))  # for kill(), if they leak
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        self._join_readers()
        return code, time.monotonic() - started

    def kill(self):
        """SIGKILL the server and whatever it started that is still alive: its
        current descendants, those seen before a stop, and its process group
        (the server leads a session of its own, so the group is only ours)."""
        if self.proc is None:
            return
        leftovers = set(descendants(self.proc.pid)) | self._seen_children
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        for identity in leftovers:
            if is_alive(identity):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(identity[0], signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._join_readers()

    def children(self):
        """(pid, starttime) of every live descendant process of the server."""
        return descendants(self.proc.pid)

    def survivors(self, identities=None, timeout=3.0):
        """Which of `identities` (default: the descendants seen when stop() began)
        are still alive after up to `timeout` s (exited children of an exited
        server may need a moment to be reaped)."""
        identities = self._seen_children if identities is None else identities
        deadline = time.monotonic() + timeout
        while True:
            alive = sorted(i for i in identities if is_alive(i))
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    # -- what it printed -------------------------------------------------------

    def output(self, last=300):
        """The server's last `last` lines of output, for failure messages."""
        with self._lock:
            lines = [f"[{s}] {line}" for s, line in self._lines]
        skipped = max(0, len(lines) - last)
        header = [f"--- strait output ({skipped} earlier lines omitted) ---" if skipped
                  else "--- strait output ---"]
        return "\n".join(header + lines[skipped:])

    def stdout_lines(self):
        with self._lock:
            return [line for s, line in self._lines if s == "stdout"]

    def runtime_endpoints(self, timeout=5.0, zones=tuple(ZONES)):
        """The `Runtime:` block: {'regional': url, 'us-east-1a': url, ...}. It is
        printed after the `API endpoint:` line, so wait for all zones briefly.
        `zones`: the zone names the server was configured with (default: the embedded ones)."""
        deadline = time.monotonic() + timeout
        while True:
            found = {}
            for line in self.stdout_lines():
                match = RUNTIME_LINE.match(line)
                if match:
                    found[match.group(3) or "regional"] = match.group(1).rstrip("/")
            if len(found) == 1 + len(zones) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert set(found) == {"regional", *zones}, f"bad Runtime block\n{self.output()}"
        return found

    def instance_dir(self, endpoint):
        return self.data_dir / "instances" / endpoint

    def instance_pids(self, endpoint):
        """{instance id: (pid, line 2)} from the endpoint's instance pid files
        (line 1 the pid; line 2 its start time, field 22 of /proc/<pid>/stat)."""
        found = {}
        for path in sorted(self.instance_dir(endpoint).glob("*.pid")):
            lines = path.read_text().splitlines()
            if lines and lines[0].strip().isdigit():
                found[path.stem] = (int(lines[0]), lines[1] if len(lines) > 1 else "")
        return found

    # -- how to talk to it -------------------------------------------------------

    @property
    def credentials_path(self):
        return self.data_dir / "credentials"

    def credentials(self):
        parser = configparser.ConfigParser()
        if not parser.read(self.credentials_path):
            pytest.fail(f"cannot read {self.credentials_path}", pytrace=False)
        section = parser["default"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def client(self, access_key=None, secret_key=None, service="sagemaker", **config):
        default_key, default_secret = self.credentials()
        options = {"retries": {"total_max_attempts": 1}, "connect_timeout": 5, "read_timeout": 30}
        options.update(config)
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or default_key,
            aws_secret_access_key=secret_key or default_secret,
            config=botocore.config.Config(**options),
        )

    def runtime(self, url=None, access_key=None, secret_key=None, **config):
        """A sagemaker-runtime client for the regional (default) or a zonal URL."""
        default_key, default_secret = self.credentials()
        options = {"retries": {"total_max_attempts": 1}, "connect_timeout": 5, "read_timeout": 30}
        options.update(config)
        return boto3.client(
            "sagemaker-runtime",
            endpoint_url=url or self.runtime_endpoints()["regional"],
            region_name=REGION,
            aws_access_key_id=access_key or default_key,
            aws_secret_access_key=secret_key or default_secret,
            config=botocore.config.Config(**options),
        )

    def metrics(self):
        """The regional endpoint's `GET /metrics` text."""
        parts = urlsplit(self.endpoint)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            connection.request("GET", "/metrics")
            return connection.getresponse().read().decode()
        finally:
            connection.close()

    def busy_polls(self):
        """strait_busy_polls_total as {result: count}."""
        return {line.split('"')[1]: int(line.rsplit(" ", 1)[1]) for line in self.metrics().splitlines()
                if line.startswith("strait_busy_polls_total{result=")}

    def resources(self):
        """Resource helpers bound to this server (no automatic cleanup: stopping
        the server stops its instances)."""
        return Resources(self.client(), self.client(service="ec2"))

    @staticmethod
    def arn(kind, name):
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:{kind}/{name.lower()}"


class StraitFactory:
    """Starts servers for a single test; tears all of them down afterwards."""

    def __init__(self, base_dir):
        self.base_dir = Path(base_dir)
        self.servers = []

    def new_data_dir(self):
        return self.base_dir / f"data-{len(self.servers)}-{uuid.uuid4().hex[:6]}"

    def start(self, data_dir=None, args=(), env=None):
        server = StraitServer(data_dir or self.new_data_dir(), args=args, env=env)
        self.servers.append(server)
        return server.start()

    def close(self):
        for server in self.servers:
            if server.running():
                server.stop()
            server.kill()


# --------------------------------------------------------------------------
# Resources (models, endpoint configs, endpoints) with cleanup
# --------------------------------------------------------------------------

def variant(model_name, name="AllTraffic", count=1, weight=1.0, instance_type=INSTANCE_TYPE):
    return {
        "VariantName": name,
        "ModelName": model_name,
        "InstanceType": instance_type,
        "InitialInstanceCount": count,
        "InitialVariantWeight": weight,
    }


class Resources:
    """Creates SageMaker resources through one boto3 client and deletes every one
    of them at teardown, endpoints first (waiting until they are gone)."""

    ECHO_IMAGE = ECHO_IMAGE
    INSTANCE_TYPE = INSTANCE_TYPE
    ROLE_ARN = ROLE_ARN
    FAST_WAIT = FAST_WAIT
    variant = staticmethod(variant)

    def __init__(self, sm, ec2):
        self.sm = sm
        self.ec2 = ec2
        self._default_group = None
        self.models, self.configs, self.endpoints = [], [], []

    # -- create ----------------------------------------------------------------

    def model(self, name=None, image=ECHO_IMAGE, tags=None, zones=None, model_data=None, environment=None):
        """zones: e.g. ['us-east-1a', 'us-east-1b'] -> VpcConfig with those subnets;
        model_data: the ModelDataUrl; environment: the container's Environment."""
        name = name or make_unique_name("model")
        container = {"Image": image}
        if model_data:
            container["ModelDataUrl"] = model_data
        if environment:
            container["Environment"] = environment
        kwargs = {
            "ModelName": name,
            "PrimaryContainer": container,
            "ExecutionRoleArn": ROLE_ARN,
        }
        if zones:
            kwargs["VpcConfig"] = {"SecurityGroupIds": [self.default_security_group()],
                                   "Subnets": [ZONES[z][0] for z in zones]}
        if tags:
            kwargs["Tags"] = tags
        self.sm.create_model(**kwargs)
        self.models.append(name)
        return name

    def default_security_group(self):
        """The default VPC's default security group (VpcConfig must name groups that exist)."""
        if self._default_group is None:
            vpc = self.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
            self._default_group = self.ec2.describe_security_groups(Filters=[
                {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}],
            )["SecurityGroups"][0]["GroupId"]
        return self._default_group

    def endpoint_config(self, *models, name=None, count=1, variants=None, tags=None):
        """One variant per model (VariantName 'AllTraffic' for a single model,
        'v0', 'v1', ... for several) unless `variants` is given."""
        name = name or make_unique_name("config")
        if variants is None:
            models = models or (self.model(),)
            if len(models) == 1:
                variants = [variant(models[0], count=count)]
            else:
                variants = [variant(m, name=f"v{i}", count=count) for i, m in enumerate(models)]
        kwargs = {"EndpointConfigName": name, "ProductionVariants": variants}
        if tags:
            kwargs["Tags"] = tags
        self.sm.create_endpoint_config(**kwargs)
        self.configs.append(name)
        return name

    def endpoint(self, config=None, name=None, tags=None, wait=True):
        name = name or make_unique_name("endpoint")
        config = config or self.endpoint_config()
        kwargs = {"EndpointName": name, "EndpointConfigName": config}
        if tags:
            kwargs["Tags"] = tags
        self.sm.create_endpoint(**kwargs)
        self.endpoints.append(name)
        if wait:
            self.wait_in_service(name)
        return name

    def failing_endpoint(self, image="/nonexistent/serve"):
        """An endpoint whose image cannot be resolved, waited until Failed."""
        name = self.endpoint(self.endpoint_config(self.model(image=image)), wait=False)
        return name, self.wait_status(name, {"Failed"})

    # -- wait ------------------------------------------------------------------

    def wait_in_service(self, name):
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
        return self.sm.describe_endpoint(EndpointName=name)

    def wait_deleted(self, name):
        self.sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST_WAIT)

    def wait_status(self, name, statuses, timeout=STATUS_TIMEOUT):
        """Polls DescribeEndpoint until EndpointStatus is one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            described = self.sm.describe_endpoint(EndpointName=name)
            if described["EndpointStatus"] in statuses:
                return described
            if time.monotonic() > deadline:
                pytest.fail(f"endpoint {name} still {described['EndpointStatus']} after "
                            f"{timeout:.0f} s, wanted one of {sorted(statuses)}: {described}")
            time.sleep(POLL_INTERVAL)

    # -- delete ----------------------------------------------------------------

    def _gone(self, call, **kwargs):
        """Runs a Describe*/Delete* call; True when the resource does not exist."""
        try:
            call(**kwargs)
        except ClientError as exc:
            code, _, message = error_summary(exc)
            if code == "ValidationException" and "Could not find" in message:
                return True
            raise
        return False

    def delete_endpoint(self, name, timeout=STATUS_TIMEOUT):
        """Deletes an endpoint in whatever state it is, and waits until it is gone."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._gone(self.sm.delete_endpoint, EndpointName=name):
                    return
                break
            except ClientError:
                # e.g. still Creating/Updating: let it settle, then retry.
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_INTERVAL)
        while not self._gone(self.sm.describe_endpoint, EndpointName=name):
            if time.monotonic() > deadline:
                pytest.fail(f"endpoint {name} still exists {timeout:.0f} s after DeleteEndpoint")
            time.sleep(POLL_INTERVAL)

    def cleanup(self):
        errors = []
        steps = (
            [(self.delete_endpoint, {"name": n}) for n in self.endpoints]
            + [(self._gone, {"call": self.sm.delete_endpoint_config, "EndpointConfigName": n})
               for n in self.configs]
            + [(self._gone, {"call": self.sm.delete_model, "ModelName": n}) for n in self.models]
        )
        for step, kwargs in steps:
            try:
                step(**kwargs)
            except Exception as exc:  # keep cleaning; report everything at the end
                errors.append(f"{kwargs}: {exc!r}")
        self.models, self.configs, self.endpoints = [], [], []
        if errors:
            pytest.fail("cleanup failed:\n" + "\n".join(errors), pytrace=False)


# --------------------------------------------------------------------------
# The AWS CLI
# --------------------------------------------------------------------------

class CliResult:
    def __init__(self, args, completed):
        self.args = args
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}

    def __repr__(self):
        return (f"aws {' '.join(self.args)} -> {self.returncode}\n"
                f"stdout: {self.stdout}\nstderr: {self.stderr}")


class Cli:
    """Runs `aws sagemaker <args>` against one server, with its credentials file."""

    def __init__(self, server, empty_config):
        self.server = server
        venv_aws = Path(sys.executable).parent / "aws"
        self.executable = str(venv_aws) if venv_aws.exists() else shutil.which("aws")
        if not self.executable:
            pytest.fail("the AWS CLI (`aws`) is not installed", pytrace=False)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(server.credentials_path),
            AWS_CONFIG_FILE=str(empty_config),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
        )

    def run(self, *args, timeout=60, service="sagemaker", endpoint_url=None):
        """Runs `aws <service> <args>`; endpoint_url defaults to the API endpoint."""
        argv = [self.executable, service, *args,
                "--endpoint-url", endpoint_url or self.server.endpoint,
                "--region", REGION, "--output", "json"]
        completed = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                                   timeout=timeout, stdin=subprocess.DEVNULL)
        return CliResult(list(args), completed)

    def __call__(self, *args):
        """Runs a command that must succeed; returns its parsed JSON output."""
        result = self.run(*args)
        assert result.returncode == 0, repr(result)
        return result.json()

    def runtime(self, *args, endpoint_url=None):
        """Runs `aws sagemaker-runtime <args>` against the regional (default) or a
        zonal runtime URL; it must succeed. Returns the parsed JSON output."""
        result = self.run(*args, service="sagemaker-runtime",
                          endpoint_url=endpoint_url or self.server.runtime_endpoints()["regional"])
        assert result.returncode == 0, repr(result)
        return result.json()

    def fails(self, *args):
        """Runs a command that must fail; returns its result for inspection."""
        result = self.run(*args)
        assert result.returncode != 0, repr(result)
        return result


# --------------------------------------------------------------------------
# Raw signed requests
# --------------------------------------------------------------------------

class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else {}

    @property
    def error_code(self):
        """The error code as botocore would read it: body __type, else x-amzn-ErrorType."""
        code = ""
        with contextlib.suppress(ValueError, AttributeError):
            code = self.json().get("__type", "")
        code = code or self.headers.get("x-amzn-errortype", "")
        return code.split("#")[-1].split(":")[0]

    @property
    def message(self):
        try:
            body = self.json()
        except ValueError:
            return ""
        return body.get("message") or body.get("Message") or ""

    def __repr__(self):
        return f"HTTP {self.status} {self.headers} {self.body[:2000]!r}"


class SignedRequester:
    """Builds SageMaker requests with botocore's SigV4 signer and sends them with
    http.client, so a test can break any part of them."""

    def __init__(self, server):
        self.server = server

    def __call__(self, operation, body=None, *, target=None, credentials=None, sign=True,
                 signed_at=None, body_after_signing=None, headers_after_signing=None,
                 raw_body=None):
        """operation: e.g. 'ListModels' (X-Amz-Target SageMaker.<operation>), or
        target= for a literal X-Amz-Target. body: a dict (JSON-encoded), or raw_body
        bytes as sent. credentials: (access key, secret), default the server's own.
        signed_at: datetime to sign with instead of now."""
        payload = raw_body if raw_body is not None else json.dumps(body or {}).encode()
        url = self.server.endpoint + "/"
        headers = {
            "Content-Type": JSON_CONTENT_TYPE,
            "X-Amz-Target": target or f"SageMaker.{operation}",
        }
        request = botocore.awsrequest.AWSRequest(method="POST", url=url, data=payload,
                                                 headers=headers)
        if sign:
            key, secret = credentials or self.server.credentials()
            signer = botocore.auth.SigV4Auth(
                botocore.credentials.Credentials(key, secret), "sagemaker", REGION)
            if signed_at is None:
                signer.add_auth(request)
            else:
                with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
                    signer.add_auth(request)
        prepared = request.prepare()
        send_headers = dict(prepared.headers.items())
        send_body = prepared.body if body_after_signing is None else body_after_signing
        send_headers.update(headers_after_signing or {})
        send_headers.pop("Content-Length", None)  # http.client sets it from the body
        return self.send(send_headers, send_body)

    def send(self, headers, body, path="/"):
        parts = urlsplit(self.server.endpoint)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return RawResponse(response.status, response.getheaders(), response.read())
        finally:
            connection.close()


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def strait(tmp_path_factory):
    """The shared server. Its teardown is itself a check: graceful exit 0."""
    server = StraitServer(tmp_path_factory.mktemp("strait-shared") / "data")
    try:
        server.start()
        yield server
    finally:
        code, took = server.stop()
        leaked = server.survivors()
        server.kill()
    assert code == 0, (f"shared server did not exit 0 on SIGTERM within {STOP_TIMEOUT:.0f} s "
                       f"(code {code}, {took:.1f} s)\n{server.output()}")
    assert leaked == [], f"processes outlived the shared server: {leaked}"


@pytest.fixture
def strait_factory(tmp_path):
    factory = StraitFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def sm(strait):
    return strait.client()


@pytest.fixture(scope="session")
def sm_raw(strait):
    """A client that sends what it is given: no client-side parameter validation."""
    return strait.client(parameter_validation=False)


@pytest.fixture(scope="session")
def ec2(strait):
    return strait.client(service="ec2")


@pytest.fixture
def resources(sm, ec2):
    res = Resources(sm, ec2)
    yield res
    res.cleanup()


@pytest.fixture(scope="session")
def cli(strait, tmp_path_factory):
    empty_config = tmp_path_factory.mktemp("aws-cli") / "config"
    empty_config.write_text("")
    return Cli(strait, empty_config)


@pytest.fixture(scope="session")
def signed_request(strait):
    return SignedRequester(strait)


@pytest.fixture(scope="session")
def unique_name():
    return make_unique_name


@pytest.fixture(scope="session")
def aws_error():
    return expect_aws_error


@pytest.fixture
def server_still_serves(strait, sm):
    """After a bad-input test: the server is alive and still answers."""
    yield
    assert strait.running(), f"strait died\n{strait.output()}"
    response = sm.list_models(MaxResults=1)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200

"""What the peer benchmark (peers.py) and the zone experiment (zones.py) share: the processes they start and stop,
free loopback ports, CPU time of process trees, `strait serve` driven through boto3 and its admin API, SigV4
signatures for wrk, wrk itself, and the two models with their CSV payloads.
"""

import configparser
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import numpy as np
import xgboost as xgb

HERE = Path(__file__).resolve().parent  # Benchmarks/peers/harness
PEERS = HERE.parent  # Benchmarks/peers
REPO = PEERS.parent.parent
REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/StraitBenchmark"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------------------------
# Processes: every server is started here and stopped on exit, with everything it started
# --------------------------------------------------------------------------------------------------------------

def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (fields[0] is field 3, the state), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def identity(pid):
    """(pid, start time): tells a process apart from a later one that reuses its pid. None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None or fields[0] == "Z" else (pid, fields[19])


def descendants(root):
    """Identities of every live descendant of `root` (a scan of /proc by parent pid)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        ident = identity(pid)
        if ident is not None:
            found.append(ident)
        queue.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(roots):
    """User + system CPU seconds of each root process and its live descendants, summed."""
    total = 0
    for root in roots:
        for pid in [root] + [pid for pid, _ in descendants(root)]:
            fields = _stat_fields(pid)
            if fields is not None:
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


class Processes:
    """The servers this run started. stop_all() ends each with its descendants: SIGTERM to the server, then
    SIGTERM and SIGKILL to whatever of its tree (as seen before the stop) is still alive, by pid and start time."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started = []  # (name, Popen)

    def start(self, name, argv, env=None, cwd=None):
        log_file = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=cwd,
            start_new_session=True,  # a Ctrl-C reaches the harness, which stops the servers in order
        )
        log_file.close()
        self.started.append((name, process))
        return process

    def log_path(self, name):
        return self.log_dir / f"{name}.log"

    def stop(self, process, grace=15.0):
        self.started = [(name, p) for name, p in self.started if p is not process]
        tree = descendants(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        leftovers = [i for i in tree if identity(i[0]) == i]
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 1.0)):
            for pid, _ in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while leftovers and time.monotonic() < deadline:
                time.sleep(0.05)
                leftovers = [i for i in leftovers if identity(i[0]) == i]
        if process.poll() is None:
            process.kill()
        process.wait()

    def stop_all(self):
        while self.started:
            self.stop(self.started[-1][1])


def exit_on_signals():
    """SIGINT, SIGTERM and SIGHUP end the run as Ctrl-C does, so every `finally` (servers, iptables rules) runs;
    also when started in the background, where SIGINT comes in ignored."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def free_port(host="127.0.0.1", below=None):
    """A port nobody listens on. `below`: one under that number, outside Linux's ephemeral range (multi-model-server
    refuses ports from 32767 up)."""
    while True:
        with socket.socket() as s:
            try:
                s.bind((host, random.randrange(10_000, below) if below else 0))
            except OSError:
                continue
            return s.getsockname()[1]


def wait_http(url, what, timeout=180.0, process=None):
    """Waits until GET `url` answers 200; fails early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode} before it was ready")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    sys.exit(f"{what} did not answer {url} within {timeout:.0f} s")


# --------------------------------------------------------------------------------------------------------------
# The models and their payloads
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Model:
    name: str  # small or large
    path: Path  # XGBoost JSON
    features: int
    booster: xgb.Booster = field(repr=False)

    def csv(self, rows):
        """`rows` deterministic rows of features, as the CSV text every target gets (4 decimals, no header)."""
        rng = np.random.default_rng(1_000 * self.features + rows)
        values = rng.normal(size=(rows, self.features))
        return "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in values)

    def expected(self, csv_text):
        """XGBoost's own predictions for a CSV payload, the reference every target is checked against."""
        rows = np.loadtxt(csv_text.splitlines(), delimiter=",", dtype=np.float32, ndmin=2)
        return self.booster.inplace_predict(rows)


def train_models(python, directory):
    """Trains small.json and large.json with Benchmarks/xgboost/train_models.py (fixed seeds, one thread)."""
    subprocess.run([python, REPO / "Benchmarks/xgboost/train_models.py", directory], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    models = {}
    for name in ("small", "large"):
        booster = xgb.Booster()
        booster.load_model(directory / f"{name}.json")
        models[name] = Model(name, directory / f"{name}.json", booster.num_features(), booster)
    return models


def model_archive(model, directory):
    """model.tar.gz holding `xgboost-model`, as SageMaker's XGBoost container expects model data."""
    archive = Path(directory) / f"{model.name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model.path, arcname="xgboost-model")
    return archive


def close_enough(got, expected, rtol=1e-5, atol=1e-6):
    """Predictions agree within 1e-5 relative (1e-6 absolute for values near 0)."""
    got = np.asarray(got, dtype=np.float64).ravel()
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=rtol, atol=atol))


# --------------------------------------------------------------------------------------------------------------
# Strait
# --------------------------------------------------------------------------------------------------------------

RUNTIME_LINE = re.compile(r"\s*(?:Runtime:)?\s*(http://\S+)\s+\((regional|zonal, (\S+))\)\s*$")


class Strait:
    """One `strait serve` with its own data directory, driven the way users drive it: boto3 for the control
    plane, SigV4-signed HTTP for invocations, its admin API for instances and /metrics for counters."""

    def __init__(self, processes, binary, data_dir, config=None):
        self.processes = processes
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.config = config
        self.process = None
        self.api = None  # the regional listener, http://127.0.0.1:PORT
        self.runtime = {}  # "regional" or a zone name -> URL

    def start(self, zones):
        port = free_port()
        argv = [self.binary, "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{port}",
                "--region", REGION]
        if self.config:
            argv += ["--config", self.config]
        self.process = self.processes.start("strait", argv)
        log_path = self.processes.log_path("strait")
        deadline = time.monotonic() + 30
        while len(self.runtime) < 1 + zones:
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"strait serve did not start; see {log_path}")
            time.sleep(0.1)
            for line in log_path.read_text(errors="replace").splitlines():
                match = RUNTIME_LINE.match(line)
                if match:
                    self.runtime[match.group(3) or "regional"] = match.group(1).rstrip("/")
        self.api = self.runtime["regional"]
        credentials = configparser.ConfigParser()
        credentials.read(self.data_dir / "credentials")
        self.credentials = botocore.credentials.Credentials(
            credentials["default"]["aws_access_key_id"], credentials["default"]["aws_secret_access_key"])
        self.sagemaker = boto3.client(
            "sagemaker", endpoint_url=self.api, region_name=REGION,
            aws_access_key_id=self.credentials.access_key, aws_secret_access_key=self.credentials.secret_key,
            config=botocore.config.Config(retries={"total_max_attempts": 1}))
        return self

    def create_endpoint(self, name, image, model_data, instances):
        """A model, an endpoint config with one variant of `instances` instances, and the endpoint, InService.
        Without a VpcConfig the instances go round-robin over every configured zone."""
        container = {"Image": str(image), "ModelDataUrl": Path(model_data).resolve().as_uri()}
        self.sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer=container)
        self.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "main", "ModelName": name, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": instances}])
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
        self.sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def sign(self, method, url, body=b"", headers=None):
        """The headers of a SigV4-signed request (service sagemaker). Strait accepts a signature for 15 minutes,
        so one signed request serves a whole wrk run."""
        request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        botocore.auth.SigV4Auth(self.credentials, "sagemaker", REGION).add_auth(request)
        return dict(request.headers.items())

    def invocation_url(self, listener, endpoint):
        return f"{self.runtime[listener]}/endpoints/{endpoint}/invocations"

    def instances(self, endpoint):
        """The endpoint's instances from the admin API: InstanceId, Zone, Address, Port, State, Pid, …"""
        url = f"{self.api}/strait/endpoints/{endpoint}/instances"
        request = urllib.request.Request(url, headers=self.sign("GET", url))
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["Instances"]

    def metrics(self):
        """/metrics as {(name, frozenset of label pairs): value}."""
        with urllib.request.urlopen(f"{self.api}/metrics", timeout=10) as response:
            text = response.read().decode()
        found = {}
        for line in text.splitlines():
            match = re.match(r"^(\w+)(?:\{(.*)\})?\s+(\S+)$", line)
            if match:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
                found[(match.group(1), labels)] = float(match.group(3))
        return found


def metric_sum(metrics, name, **labels):
    """The sum of a metric over every series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (metric, series), value in metrics.items() if metric == name and wanted <= series)


# --------------------------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------------------------

@dataclass
class HTTPRequest:
    method: str
    url: str
    body: bytes
    headers: dict


def run_wrk(request, connections, seconds, work_dir):
    """One wrk run (Lua script report.lua): {requests, duration_us, errors…, p50, p90, p99, p999, max} with
    latencies in µs, plus "errors" (socket errors, timeouts and non-2xx/3xx answers) and "rps"."""
    work_dir = Path(work_dir)
    body_file, headers_file = work_dir / "wrk-body", work_dir / "wrk-headers"
    body_file.write_bytes(request.body)
    headers_file.write_text("".join(f"{name}: {value}\n" for name, value in request.headers.items()
                                    if name.lower() not in ("host", "content-length")))
    threads = 1 if connections == 1 else 2
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", HERE / "report.lua", request.url],
        env={**os.environ, "WRK_METHOD": request.method, "WRK_BODY": str(body_file),
             "WRK_HEADERS": str(headers_file)},
        capture_output=True, text=True)
    line = next((l for l in result.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if result.returncode != 0 or line is None:
        sys.exit(f"wrk failed on {request.url} (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    report = json.loads(line[len("WRKJSON "):])
    report["errors"] = sum(report[k] for k in ("connect_errors", "read_errors", "write_errors",
                                                "status_errors", "timeouts"))
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def send(request, timeout=30):
    """Sends one request with urllib: (status, body bytes)."""
    http_request = urllib.request.Request(request.url, data=request.body, method=request.method,
                                          headers={k: v for k, v in request.headers.items() if k.lower() != "host"})
    try:
        with urllib.request.urlopen(http_request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()

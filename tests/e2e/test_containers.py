"""The Docker backend, for real: a dockerd this suite starts by hand (its own
data-root, exec-root, pidfile and socket; no bridge, no iptables, nothing in the
host's network), a test image imported from a tarball (a statically linked model
server, tests/docker/serve.c; no registry is reachable), and `strait serve
--docker-host` running endpoints of it, driven with boto3.

With CI=true these tests must run: a missing dockerd fails them instead of
skipping. scripts/test installs Debian's docker.io when it is missing.
"""

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import ZONES, variant

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "strait-test/model:1"
ENGINE_START_TIMEOUT = 60


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("docker", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Engine:
    """A dockerd of our own, and a few Engine API calls."""

    def __init__(self, root):
        self.root = Path(root)
        self.socket = str(self.root / "docker.sock")
        self.process = None

    def api(self, method, path, body=None, content_type="application/json"):
        connection = UnixHTTPConnection(self.socket)
        try:
            headers = {"Content-Type": content_type} if body is not None else {"Content-Length": "0"}
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            connection.request(method, "/v1.41" + path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)
        finally:
            connection.close()

    def start(self):
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.path.exists(dockerd):
            if os.environ.get("CI") == "true":
                pytest.fail("dockerd is missing: scripts/test installs docker.io; CI must run these tests")
            pytest.skip("dockerd is not installed (scripts/test installs docker.io)")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.log = open(self.root / "dockerd.log", "wb")
        self.process = subprocess.Popen(
            [dockerd, "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "dockerd.pid"), "-H", f"unix://{self.socket}",
             "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"dockerd exited: {(self.root / 'dockerd.log').read_text()[-2000:]}")
            try:
                connection = UnixHTTPConnection(self.socket, timeout=2)
                connection.request("GET", "/_ping")
                if connection.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail("dockerd did not answer /_ping")

    def import_test_image(self, tmp):
        """A root file system holding only /bin/serve (tests/docker/serve.c, linked statically), imported."""
        binary = tmp / "serve"
        subprocess.run(["gcc", "-O2", "-static", "-o", str(binary), str(REPO_ROOT / "tests/docker/serve.c")],
                       check=True)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            directory = tarfile.TarInfo("bin")
            directory.type = tarfile.DIRTYPE
            directory.mode = 0o755
            tar.addfile(directory)
            tar.add(str(binary), arcname="bin/serve")
        status, answer = self.api("POST", f"/images/create?fromSrc=-&repo={IMAGE}", archive.getvalue(),
                                  content_type="application/x-tar")
        assert status == 200, answer

    def containers(self, label="strait.endpoint"):
        filters = urllib.parse.quote(json.dumps({"label": [label]}))
        status, listed = self.api("GET", "/containers/json?all=1&filters=" + filters)
        assert status == 200, listed
        return listed

    def stop(self):
        if self.process is None:
            return
        try:
            for container in self.containers(label="strait.endpoint"):
                self.api("DELETE", f"/containers/{container['Id']}?force=1")
        except Exception:  # stop dockerd whatever happened to it
            pass
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
        # containerd shims leave dockerd's process group; end any of ours that is still there.
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if str(self.root).encode() in cmdline and b"containerd-shim" in cmdline:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass
        # dockerd leaves its default network namespace mounted under its exec-root.
        netns = self.root / "exec" / "netns" / "default"
        if netns.exists():
            subprocess.run(["umount", str(netns)], check=False)
        points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for point in reversed(points):  # children before parents
            if point.startswith(str(self.root) + "/"):
                if subprocess.run(["umount", point], check=False, capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    # A short path: the socket's path must fit in sockaddr_un.
    root = Path(f"/tmp/strait-dockerd-{os.getpid()}")
    engine = Engine(root)
    try:
        engine.start()
        engine.import_test_image(tmp_path_factory.mktemp("image"))
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def server(strait_factory, engine):
    server = strait_factory.start(args=["--docker-host", f"unix://{engine.socket}", "--instance-stop-grace", "2"])
    resources = server.resources()
    server.res = resources
    yield server
    resources.cleanup()


def model_dir(tmp_path, version):
    directory = tmp_path / f"model-{version}"
    directory.mkdir()
    (directory / "model.txt").write_text(version + "\n")
    return f"file://{directory}"


def call(server, url, endpoint, body=b"hello"):
    response = server.runtime(url).invoke_endpoint(EndpointName=endpoint, ContentType="text/plain", Body=body)
    return json.loads(response["Body"].read())


def instances(server, endpoint):
    result = subprocess.run([str(REPO_ROOT / ".build/debug/strait") if not os.environ.get("STRAIT_BIN")
                             else os.environ["STRAIT_BIN"], "instances", endpoint,
                             "--data-dir", str(server.data_dir)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.strip().split("\n")[1:]]


def test_container_endpoint_lifecycle(server, engine, tmp_path):
    res = server.res
    model = res.model(image=IMAGE, model_data=model_dir(tmp_path, "v1"), zones=["us-east-1a", "us-east-1b"])
    endpoint = res.endpoint(res.endpoint_config(variants=[variant(model, count=2)]))
    described = res.sm.describe_endpoint(EndpointName=endpoint)
    assert described["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"] == IMAGE

    ours = [c for c in engine.containers() if c["Labels"].get("strait.endpoint") == endpoint]
    assert len(ours) == 2
    for container in ours:
        assert container["Labels"]["strait.variant"] == "AllTraffic"
        assert container["Labels"]["strait.instance"].startswith("i-")
        status, inspected = engine.api("GET", f"/containers/{container['Id']}/json")
        host = inspected["HostConfig"]
        assert host["NetworkMode"] == "host" and host["Init"] is True
        assert any(bind.endswith(":/opt/ml/model:ro") for bind in host["Binds"])
        assert host["Memory"] > 0 and host["NanoCpus"] > 0
        assert inspected["Config"]["Cmd"] == ["serve"]

    zones = sorted(row[2] for row in instances(server, endpoint))
    assert zones == ["us-east-1a", "us-east-1b"]
    urls = server.runtime_endpoints()
    for url in (urls["regional"], urls["us-east-1a"], urls["us-east-1b"]):
        assert call(server, url, endpoint) == {"model": "v1", "body": "hello"}

    logs = subprocess.run([os.environ.get("STRAIT_BIN", str(REPO_ROOT / ".build/debug/strait")), "logs", endpoint,
                           "--data-dir", str(server.data_dir)], capture_output=True, text=True, timeout=30)
    assert "test model server (model v1) listening" in logs.stdout, logs

    # UpdateEndpoint: new containers with the new model data, healthy before the old ones go.
    model2 = res.model(image=IMAGE, model_data=model_dir(tmp_path, "v2"), zones=["us-east-1a", "us-east-1b"])
    config2 = res.endpoint_config(variants=[variant(model2, count=2)])
    res.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config2)
    res.wait_in_service(endpoint)
    assert call(server, urls["us-east-1a"], endpoint) == {"model": "v2", "body": "hello"}
    assert len([c for c in engine.containers() if c["Labels"].get("strait.endpoint") == endpoint]) == 2

    res.sm.delete_endpoint(EndpointName=endpoint)
    res.wait_deleted(endpoint)
    res.endpoints.remove(endpoint)
    assert [c for c in engine.containers() if c["Labels"].get("strait.endpoint") == endpoint] == []


def test_killed_container_is_replaced(server, engine, tmp_path):
    res = server.res
    model = res.model(image=IMAGE, model_data=model_dir(tmp_path, "k"), zones=["us-east-1a"])
    endpoint = res.endpoint(res.endpoint_config(variants=[variant(model, count=2)]))
    victim = next(c for c in engine.containers() if c["Labels"].get("strait.endpoint") == endpoint)
    status, _ = engine.api("POST", f"/containers/{victim['Id']}/kill")
    assert status == 204
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = instances(server, endpoint)
        if len(rows) == 2 and victim["Labels"]["strait.instance"] not in {r[0] for r in rows}:
            break
        time.sleep(0.3)
    assert sorted(r[6] for r in rows) == ["0", "1"], rows
    assert res.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    urls = server.runtime_endpoints()
    for _ in range(5):
        assert call(server, urls["us-east-1a"], endpoint)["model"] == "k"
    # The ended container is removed, not left behind.
    ids = {c["Id"] for c in engine.containers()}
    assert victim["Id"] not in ids


def test_missing_image_fails_with_the_engines_message(server, engine):
    res = server.res
    # A registry on a loopback port nothing listens on: refused at once, and no traffic leaves the machine.
    model = res.model(image="127.0.0.1:1/strait/none:1")
    endpoint = res.endpoint(res.endpoint_config(model), wait=False)
    reason = res.wait_status(endpoint, {"Failed"})["FailureReason"]
    assert "Requested image 127.0.0.1:1/strait/none:1 not found" in reason, reason
    assert "could not pull it" in reason, reason


def test_restart_removes_leftovers_and_redeploys(strait_factory, engine, tmp_path):
    server = strait_factory.start(args=["--docker-host", f"unix://{engine.socket}"])
    res = server.resources()
    model = res.model(image=IMAGE, model_data=model_dir(tmp_path, "r"))
    endpoint = res.endpoint(res.endpoint_config(model))
    before = {c["Id"] for c in engine.containers() if c["Labels"].get("strait.endpoint") == endpoint}
    assert len(before) == 1
    server.kill()  # no graceful stop: the container is left running
    again = strait_factory.start(data_dir=server.data_dir, args=["--docker-host", f"unix://{engine.socket}"])
    res2 = again.resources()
    res2.wait_in_service(endpoint)
    after = {c["Id"] for c in engine.containers() if c["Labels"].get("strait.endpoint") == endpoint}
    assert len(after) == 1 and not (after & before), (before, after)
    assert call(again, again.runtime_endpoints()["regional"], endpoint)["model"] == "r"
    res2.endpoints.append(endpoint)
    res2.cleanup()


def test_without_an_engine_the_reason_says_how_to_get_one(strait_factory, tmp_path):
    server = strait_factory.start(args=["--docker-host", f"unix://{tmp_path}/no-engine.sock"])
    res = server.resources()
    endpoint = res.endpoint(res.endpoint_config(res.model(image="example.com/models/any:1")), wait=False)
    reason = res.wait_status(endpoint, {"Failed"})["FailureReason"]
    assert "Cannot reach the Docker engine" in reason and "--docker-host" in reason, reason
    res.cleanup()

"""Model data and the built-in XGBoost runtime through `strait serve`, the way a
SageMaker user deploys an XGBoost model: a model.tar.gz holding `xgboost-model`,
CreateModel with a SageMaker XGBoost image URI and ModelDataUrl, an endpoint of
two instances over two zones, then boto3 `invoke_endpoint(ContentType='text/csv')`.
"""

import functools
import http.server
import io
import json
import tarfile
import threading

import numpy as np
import pytest

from conftest import ZONES, variant
from xgboost_models import features, train_all

SAGEMAKER_XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="module")
def logistic():
    return next(m for m in train_all() if m.name == "binary-logistic")


def model_tarball(path, booster, extra=None):
    """model.tar.gz with `xgboost-model` (JSON), as SageMaker training writes it."""
    raw = booster.save_raw("json")
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(bytes(raw)))
        for entry, data in (extra or []):
            archive.addfile(entry, io.BytesIO(data) if data is not None else None)
    return path


def csv_rows(rows):
    return "\n".join(",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in rows)


def deploy(resources, model_data, image="strait/xgboost", count=2, wait=True, environment=None):
    model = resources.model(image=image, model_data=model_data, zones=["us-east-1a", "us-east-1b"],
                            environment=environment)
    config = resources.endpoint_config(variants=[variant(model, count=count)])
    return resources.endpoint(config, wait=wait)


def test_xgboost_endpoint_from_model_tarball(strait, resources, logistic, tmp_path):
    tarball = model_tarball(tmp_path / "model.tar.gz", logistic.booster)
    endpoint = deploy(resources, f"file://{tarball}", image=SAGEMAKER_XGBOOST_IMAGE)
    described = resources.sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"] == SAGEMAKER_XGBOOST_IMAGE

    rows = features(np.random.default_rng(11), rows=25)
    expected = logistic.predict(rows)
    urls = strait.runtime_endpoints()
    for url in (urls["regional"], urls["us-east-1a"], urls["us-east-1b"]):
        runtime = strait.runtime(url)
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=csv_rows(rows))
        assert response["ContentType"] == "text/csv; charset=utf-8"
        got = [float(line) for line in response["Body"].read().decode().split()]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)

    # JSON out, and the container's 400 for a wrong feature count becomes a ModelError.
    runtime = strait.runtime(urls["us-east-1a"])
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
                                       Body=csv_rows(rows[:2]))
    scores = [p["score"] for p in json.loads(response["Body"].read())["predictions"]]
    np.testing.assert_allclose(scores, expected[:2], rtol=1e-6, atol=1e-6)
    with pytest.raises(runtime.exceptions.ModelError) as error:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body="1,2,3")
    assert error.value.response["OriginalStatusCode"] == 400
    assert "not consistent with feature size" in error.value.response["OriginalMessage"]

    # One download shared by both instances.
    environments = []
    for pid, _ in strait.instance_pids(endpoint).values():
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        environments.append(env[b"SM_MODEL_DIR"])
    assert len(environments) == 2 and len(set(environments)) == 1


def test_plain_model_file_over_http(strait, resources, logistic, tmp_path):
    logistic.booster.save_model(str(tmp_path / "model.json"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        endpoint = deploy(resources, f"http://127.0.0.1:{port}/model.json", count=1)
        rows = features(np.random.default_rng(12), rows=3)
        response = strait.runtime().invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                     Body=csv_rows(rows))
        got = [float(v) for v in response["Body"].read().decode().split()]
        np.testing.assert_allclose(got, logistic.predict(rows), rtol=1e-6, atol=1e-6)

        missing = deploy(resources, f"http://127.0.0.1:{port}/nothing-here.tar.gz", count=1, wait=False)
        failed = resources.wait_status(missing, {"Failed"})
        assert "Could not find model data" in failed["FailureReason"], failed
    finally:
        server.shutdown()
        server.server_close()


def _entry(name, kind=tarfile.REGTYPE, link="", data=b"x"):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    "entries, reason",
    [
        ([_entry("../escaped")], "leaves the model directory"),
        ([_entry("/etc/escaped")], "absolute path"),
        ([_entry("link", tarfile.SYMTYPE, "../../outside")], "leaves the model directory"),
        ([_entry("dir", tarfile.SYMTYPE, "."), _entry("dir/x")], "through a link"),
        ([_entry("fifo", tarfile.FIFOTYPE)], "special file"),
    ],
    ids=["dotdot", "absolute", "symlink-out", "through-link", "fifo"],
)
def test_hostile_archives_fail_the_endpoint(strait, resources, logistic, tmp_path, entries, reason):
    tarball = model_tarball(tmp_path / "evil.tar.gz", logistic.booster, extra=entries)
    endpoint = deploy(resources, f"file://{tarball}", count=1, wait=False)
    failed = resources.wait_status(endpoint, {"Failed"})
    assert "valid tar.gz archive" in failed["FailureReason"] and reason in failed["FailureReason"], failed
    assert not (tmp_path / "escaped").exists()


def test_bad_model_data_fails_with_reason(strait, resources, tmp_path):
    endpoint = deploy(resources, f"file://{tmp_path}/absent.tar.gz", count=1, wait=False)
    assert "Could not find model data" in resources.wait_status(endpoint, {"Failed"})["FailureReason"]

    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    endpoint = deploy(resources, f"file://{tmp_path}/broken.tar.gz", count=1, wait=False)
    assert "not valid gzip" in resources.wait_status(endpoint, {"Failed"})["FailureReason"]

    # A model file XGBoost cannot read: the worker exits, the endpoint fails with its log.
    (tmp_path / "model.json").write_text('{"learner": {}}')
    endpoint = deploy(resources, f"file://{tmp_path}/model.json", count=1, wait=False)
    reason = resources.wait_status(endpoint, {"Failed"})["FailureReason"]
    assert "Unable to load model" in reason, reason


@pytest.fixture
def s3_server(tmp_path):
    """moto's S3 API server on a free loopback port, stopped after the test."""
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    moto = Path(sys.executable).parent / "moto_server"

    def launch():
        """moto_server on a free port: its process and URL, or None if it exited first (the port was taken
        between choosing it and moto's bind)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return process, f"http://127.0.0.1:{port}"
            except OSError:
                if process.poll() is not None:
                    return None
                if time.monotonic() > deadline:
                    process.kill()
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)

    for _ in range(5):
        started = launch()
        if started:
            break
    else:
        pytest.fail("moto_server exited before it was ready, five times")
    process, url = started
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_model_data_from_s3(strait_factory, s3_server, logistic, tmp_path):
    import boto3

    keys = {"AWS_ACCESS_KEY_ID": "AKIASTRAITMOTOTEST01", "AWS_SECRET_ACCESS_KEY": "moto-secret"}
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])
    s3.create_bucket(Bucket="models")
    tarball = model_tarball(tmp_path / "model.tar.gz", logistic.booster)
    s3.upload_file(str(tarball), "models", "xgb/run 1/model.tar.gz")

    server = strait_factory.start(args=["--s3-endpoint-url", s3_server], env=keys)
    resources = server.resources()
    try:
        endpoint = deploy(resources, "s3://models/xgb/run 1/model.tar.gz", image=SAGEMAKER_XGBOOST_IMAGE)
        rows = features(np.random.default_rng(13), rows=4)
        response = server.runtime().invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                    Body=csv_rows(rows))
        got = [float(v) for v in response["Body"].read().decode().split()]
        np.testing.assert_allclose(got, logistic.predict(rows), rtol=1e-6, atol=1e-6)

        missing = deploy(resources, "s3://models/xgb/absent.tar.gz", count=1, wait=False)
        reason = resources.wait_status(missing, {"Failed"})["FailureReason"]
        assert "Could not find model data at s3://models/xgb/absent.tar.gz" in reason, reason
    finally:
        resources.cleanup()


def test_model_data_source_s3_prefix_and_compression(strait_factory, s3_server, logistic, tmp_path):
    """ModelDataSource.S3DataSource: an S3Prefix of uncompressed objects, one uncompressed object, and the
    combinations SageMaker refuses."""
    import boto3

    from conftest import ROLE_ARN, make_unique_name

    keys = {"AWS_ACCESS_KEY_ID": "AKIASTRAITMOTOTEST02", "AWS_SECRET_ACCESS_KEY": "moto-secret"}
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])
    s3.create_bucket(Bucket="prefixes")
    raw = bytes(logistic.booster.save_raw("json"))
    s3.put_object(Bucket="prefixes", Key="run-7/model/xgboost-model", Body=raw)
    s3.put_object(Bucket="prefixes", Key="run-7/model/notes/readme & more.txt", Body=b"hello")
    s3.put_object(Bucket="prefixes", Key="single/model.json", Body=raw)
    s3.put_object(Bucket="prefixes", Key="evil/model/a/../../escape", Body=b"x")
    server = strait_factory.start(args=["--s3-endpoint-url", s3_server], env=keys)
    resources = server.resources()
    sm = resources.sm

    def deploy_source(uri, data_type, compression, wait=True):
        name = make_unique_name("model")
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
            "Image": "strait/xgboost",
            "ModelDataSource": {"S3DataSource": {"S3Uri": uri, "S3DataType": data_type,
                                                 "CompressionType": compression}}})
        resources.models.append(name)
        return resources.endpoint(resources.endpoint_config(variants=[variant(name)]), wait=wait)

    try:
        rows = features(np.random.default_rng(14), rows=3)
        for uri, data_type in (("s3://prefixes/run-7/model/", "S3Prefix"), ("s3://prefixes/single/model.json", "S3Object")):
            endpoint = deploy_source(uri, data_type, "None")
            response = server.runtime().invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                                        Body=csv_rows(rows))
            got = [float(v) for v in response["Body"].read().decode().split()]
            np.testing.assert_allclose(got, logistic.predict(rows), rtol=1e-6, atol=1e-6)

        failures = {
            ("s3://prefixes/single/model.json", "S3Object", "Gzip"): "valid tar.gz archive",
            ("s3://prefixes/run-7/model/", "S3Prefix", "Gzip"): "CompressionType Gzip cannot be used",
            ("s3://prefixes/evil/model/", "S3Prefix", "None"): "not a safe path",
            ("s3://prefixes/nothing-here/", "S3Prefix", "None"): "no object has that prefix",
        }
        for (uri, data_type, compression), reason in failures.items():
            endpoint = deploy_source(uri, data_type, compression, wait=False)
            failed = resources.wait_status(endpoint, {"Failed"})
            assert reason in failed["FailureReason"], (uri, failed["FailureReason"])
    finally:
        resources.cleanup()


def test_oversized_model_data_is_cut_off(strait_factory, tmp_path):
    """Over --max-model-data-mib the download stops (here at the announced length) and the endpoint fails."""
    (tmp_path / "big.bin").write_bytes(b"\0" * (3 << 20))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    server = strait_factory.start(args=["--max-model-data-mib", "1"])
    res = server.resources()
    try:
        model = res.model(image="strait/echo", model_data=f"http://127.0.0.1:{web.server_address[1]}/big.bin")
        endpoint = res.endpoint(res.endpoint_config(model), wait=False)
        reason = res.wait_status(endpoint, {"Failed"})["FailureReason"]
        assert "over the limit of 1048576 bytes" in reason, reason
        assert not list((server.data_dir / "models").glob("*/big.bin"))
    finally:
        res.cleanup()
        web.shutdown()
        web.server_close()

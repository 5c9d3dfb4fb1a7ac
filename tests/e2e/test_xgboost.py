"""The built-in XGBoost runtime (`strait worker --runtime xgboost`) against XGBoost itself.

Models for every supported objective are trained with the real xgboost-cpu,
saved as JSON and UBJSON, served by real `strait worker` processes over the
SageMaker container contract, and their predictions must equal XGBoost's own
(relative 1e-6). Then the container's payload formats, outputs and errors.
"""

import contextlib
import http.client
import json
import os
import pickle
import socket
import subprocess
import time

import numpy as np
import pytest
import xgboost as xgb

from conftest import strait_binary
from xgboost_models import CATEGORICAL_FEATURE, FEATURES, features, train_all

RTOL = 1e-6
ATOL = 1e-6  # margins that cancel to ~0 are compared absolutely


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """One `strait worker --runtime xgboost serve` process on its own port."""

    def __init__(self, model_dir, env=None):
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SM_MODEL_DIR": str(model_dir),
            "STRAIT_BIND_ADDRESS": "127.0.0.1",
            **(env or {}),
        }
        self._launch()

    def _launch(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [strait_binary(), "worker", "--runtime", "xgboost", "serve"],
            env={**self.env, "SAGEMAKER_BIND_TO_PORT": str(self.port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        relaunched = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode()
                # The free port was taken between free_port() and the worker's bind (by any socket on the
                # machine, an outgoing connection's ephemeral port included): start again on another one.
                if "Address already in use" in error and relaunched < 5:
                    self.process.stdout.close()
                    self.process.stderr.close()
                    relaunched += 1
                    self._launch()
                    continue
                raise AssertionError(f"worker exited: {error}")
            with contextlib.suppress(OSError):
                status, _, _ = self.request("GET", "/ping")
                if status == 200:
                    return self
            time.sleep(0.05)
        raise AssertionError("worker did not answer /ping")

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def invoke(self, body, content_type="text/csv", accept=None):
        headers = {"Content-Type": content_type} if content_type is not None else {}
        if accept:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body=body, headers=headers)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def worker_factory():
    started = []

    def start(model_dir, env=None, ready=True):
        worker = Worker(model_dir, env)
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def models():
    return {model.name: model for model in train_all()}


def save(model, directory, fmt):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("xgboost-model" if fmt == "xgboost-model" else f"model.{fmt}")
    if fmt == "xgboost-model":
        model.booster.save_model(str(directory / "tmp.json"))
        (directory / "tmp.json").rename(path)
    else:
        model.booster.save_model(str(path))
    return directory


def csv_payload(rows):
    """Rows as CSV, missing values as empty fields, numbers in float32 repr."""
    lines = []
    for row in rows:
        lines.append(",".join("" if np.isnan(v) else repr(float(np.float32(v))) for v in row))
    return "\n".join(lines).encode()


def scores(body):
    return [entry["score"] for entry in json.loads(body)["predictions"]]


MODEL_NAMES = [name for name, *_ in __import__("xgboost_models").SPECS]


@pytest.mark.parametrize("fmt", ["json", "ubj"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predictions_equal_xgboost(models, worker_factory, tmp_path, name, fmt):
    model = models[name]
    worker = worker_factory(save(model, tmp_path / name, fmt))
    rows = features(np.random.default_rng(99), rows=60, categorical=model.categorical)
    if model.categorical:
        rows[0, CATEGORICAL_FEATURE] = 42.0  # a category never seen in training
        rows[1, CATEGORICAL_FEATURE] = 2.7  # a fractional code, truncated as XGBoost does
    status, headers, body = worker.invoke(csv_payload(rows), accept="application/json")
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    expected = model.predict(rows)
    np.testing.assert_allclose(np.asarray(scores(body), dtype=np.float64), expected, rtol=RTOL, atol=ATOL)


def test_xgboost_model_file_name_and_libsvm(models, worker_factory, tmp_path):
    model = models["binary-logistic"]
    worker = worker_factory(save(model, tmp_path / "m", "xgboost-model"))
    rows = features(np.random.default_rng(5), rows=20)
    # 1-based libsvm with a label column, missing features left out.
    lines = []
    for row in rows:
        lines.append(" ".join(["1"] + [f"{i + 1}:{float(np.float32(v))!r}" for i, v in enumerate(row) if not np.isnan(v)]))
    status, _, body = worker.invoke("\n".join(lines).encode(), content_type="text/libsvm", accept="application/json")
    assert status == 200, body
    np.testing.assert_allclose(scores(body), model.predict(rows), rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def logistic_dir(tmp_path_factory):
    model = train_all()[4]  # binary-logistic
    assert model.name == "binary-logistic"
    return save(model, tmp_path_factory.mktemp("logistic"), "json"), model


def test_text_csv_is_one_prediction_per_line(logistic_dir, worker_factory):
    directory, model = logistic_dir
    worker = worker_factory(directory)
    rows = features(np.random.default_rng(1), rows=3, missing=0.0)
    for accept in (None, "*/*", "text/csv"):
        status, headers, body = worker.invoke(csv_payload(rows), accept=accept)
        assert status == 200
        assert headers["content-type"] == "text/csv; charset=utf-8"
        lines = body.decode().split("\n")
        assert lines[-1] == "" and len(lines) == 4
        # Python's str() of the float32 prediction, as the SageMaker container prints it.
        assert lines[:3] == [str(float(p)) for p in model.predict(rows)]


def test_default_accept_and_jsonlines(logistic_dir, worker_factory):
    directory, model = logistic_dir
    worker = worker_factory(directory, env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/jsonlines"})
    rows = features(np.random.default_rng(2), rows=2, missing=0.0)
    status, headers, body = worker.invoke(csv_payload(rows))
    assert status == 200 and headers["content-type"] == "application/jsonlines"
    lines = body.decode().strip().split("\n")
    assert [json.loads(line)["score"] for line in lines] == pytest.approx(model.predict(rows).tolist(), rel=RTOL)


def test_softprob_outputs(models, worker_factory, tmp_path):
    model = models["softprob"]
    worker = worker_factory(save(model, tmp_path / "sp", "json"))
    rows = features(np.random.default_rng(3), rows=2, missing=0.0)
    status, _, body = worker.invoke(csv_payload(rows), accept="text/csv")
    assert status == 200
    expected = model.predict(rows)
    got = [[float(v) for v in line.split(",")] for line in body.decode().strip().split("\n")]
    np.testing.assert_allclose(got, expected, rtol=RTOL)
    status, _, body = worker.invoke(csv_payload(rows), accept="application/json")
    assert [len(s) for s in scores(body)] == [3, 3]


def test_selectable_inference_output(models, worker_factory, tmp_path):
    model = models["binary-logistic"]
    env = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label, probabilities,foo"}
    worker = worker_factory(save(model, tmp_path / "sel", "json"), env=env)
    rows = features(np.random.default_rng(4), rows=2, missing=0.0)
    p = [float(v) for v in model.predict(rows)]
    status, _, body = worker.invoke(csv_payload(rows), accept="text/csv")
    assert status == 200
    expected = "\n".join(f'{int(v > 0.5)},"{[1.0 - v, v]}",nan' for v in p)
    assert body.decode() == expected
    status, _, body = worker.invoke(csv_payload(rows), accept="application/json")
    text = body.decode()
    assert text.startswith('{"predictions": [{"predicted_label": ')
    parsed = json.loads(text)  # Python's json reads the bare NaN the container writes
    assert parsed["predictions"][0]["probabilities"] == [1.0 - p[0], p[0]]
    assert np.isnan(parsed["predictions"][0]["foo"])

    softprob = models["softprob"]
    env = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,labels,probability"}
    worker = worker_factory(save(softprob, tmp_path / "sel2", "json"), env=env)
    status, _, body = worker.invoke(csv_payload(rows), accept="application/jsonlines")
    probabilities = softprob.predict(rows)
    for line, expected_row in zip(body.decode().strip().split("\n"), probabilities):
        entry = json.loads(line)
        assert entry["predicted_label"] == int(np.argmax(expected_row))
        assert entry["labels"] == [0, 1, 2]
        assert entry["probability"] == pytest.approx(float(np.max(expected_row)), rel=RTOL)

    ranking = models["pairwise"]
    worker = worker_factory(save(ranking, tmp_path / "sel3", "json"), env={"SAGEMAKER_INFERENCE_OUTPUT": "raw_score"})
    status, _, body = worker.invoke(csv_payload(rows))
    assert status == 500 and b"unsupported for selectable inference" in body


@pytest.mark.parametrize(
    "body, content_type, accept, status, message",
    [
        (b"", "text/csv", None, 204, b""),
        (b"1,2,3,4,5,6", "application/octet-stream", None, 415, b"is not an accepted ContentType"),
        (b"1,2,3,4,5,6", "text/csv; label_size=2", None, 415, b"label_size must be equal to 1"),
        (b"1,2,3,4,5,6", "text/csv", "text/html", 406, b"Accept type text/html is not supported"),
        (b"1,2,3,4,5", "text/csv", None, 400, b"not consistent with feature size of trained model (6)"),
        (b"1,2,3,4,5,6\n1,2,3", "text/csv", None, 400, b"(3 on line 2)"),
        (b"1,2,3,4,5,6,7", "text/csv", None, 400, b"(7 on line 1)"),
        (b"1,2,x,4,5,6", "text/csv", None, 400, b"column 3 ('x') is not a finite number"),
        (b"1,2,inf,4,5,6", "text/csv", None, 400, b"contains `inf`"),
        (b"1,2,1e40,4,5,6", "text/csv", None, 400, b"contains `inf`"),
        (b"a,b,c,d,e,f\n1,2,3,4,5,6", "text/csv", None, 400, b"line 1, column 1"),
        (b"\xff\xfe,1,2,3,4,5", "text/csv", None, 400, b"not a finite number"),
        (b"0 1:0.5 99:1", "text/libsvm", None, 400, b"larger than feature size of trained model 6"),
        (b"0 1:x", "text/libsvm", None, 400, b"is not index:value"),
        (b"0 -1:2", "text/libsvm", None, 400, b"is not index:value"),
    ],
)
def test_bad_payloads(logistic_dir, worker_factory, body, content_type, accept, status, message):
    directory, _ = logistic_dir
    worker = worker_factory(directory)
    got_status, _, got_body = worker.invoke(body, content_type=content_type, accept=accept)
    assert got_status == status, got_body
    assert message in got_body
    # The worker keeps serving.
    assert worker.invoke(b"1,2,3,4,5,6")[0] == 200


def test_huge_and_odd_payloads(logistic_dir, worker_factory):
    directory, _ = logistic_dir
    worker = worker_factory(directory)
    million = b",".join([b"1"] * 1_000_000)
    status, _, body = worker.invoke(million)
    assert status == 400 and b"1000000 on line 1" in body
    # nan text and empty fields are missing values; blank lines and CRLF are tolerated.
    status, _, body = worker.invoke(b"nan,,1,2,NaN,3\r\n\r\n1,2,3,4,5,6\n")
    assert status == 200 and len(body.decode().strip().split("\n")) == 2
    # No Content-Type: libsvm, as the container.
    status, _, _ = worker.invoke(b"0:1 1:2", content_type=None)
    assert status == 200
    status, _, body = worker.request("GET", "/execution-parameters")
    assert status == 200 and json.loads(body)["MaxPayloadInMB"] == 6


def hostile_files(tmp_path, models):
    model = models["binary-logistic"]
    model.booster.save_model(str(tmp_path / "good.json"))
    model.booster.save_model(str(tmp_path / "good.ubj"))
    good_json = (tmp_path / "good.json").read_bytes()
    good_ubj = (tmp_path / "good.ubj").read_bytes()
    document = json.loads(good_json)
    cyclic = json.loads(good_json)
    tree = cyclic["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["right_children"][0] = tree["left_children"][0]  # one node reached twice
    out_of_range = json.loads(good_json)
    out_of_range["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = 10**6
    return {
        "truncated-json": (good_json[: len(good_json) // 2], b"not valid JSON"),
        "truncated-ubj": (good_ubj[: len(good_ubj) // 2], b"not valid UBJSON"),
        "pickle": (pickle.dumps({"booster": "not really"}), b"save_model('model.json')"),
        "legacy-binary": (b"binf" + bytes(200), b"legacy binary format"),
        "garbage-ubj": (b"{L\x7f\xff\xff\xff\xff\xff\xff\xff", b"not valid UBJSON"),
        "cyclic-tree": (json.dumps(cyclic).encode(), b"reached twice"),
        "feature-out-of-range": (json.dumps(out_of_range).encode(), b"splits on feature 1000000"),
        "no-learner": (json.dumps({"version": document["version"]}).encode(), b"no 'learner'"),
        "empty": (b"", b"not valid JSON"),
    }


def test_hostile_model_files_fail_cleanly(models, worker_factory, tmp_path):
    for name, (content, message) in hostile_files(tmp_path, models).items():
        directory = tmp_path / name
        directory.mkdir()
        (directory / "xgboost-model").write_bytes(content)
        worker = worker_factory(directory, ready=False)
        assert worker.process.wait(timeout=30) == 1, name
        stderr = worker.process.stderr.read()
        assert b"Unable to load model" in stderr and message in stderr, (name, stderr)


def test_model_directory_errors(worker_factory, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    worker = worker_factory(empty, ready=False)
    assert worker.process.wait(timeout=30) == 1
    assert b"holds no model file" in worker.process.stderr.read()
    several = tmp_path / "several"
    several.mkdir()
    (several / "a.json").write_text("{}")
    (several / "b.json").write_text("{}")
    worker = worker_factory(several, ready=False)
    assert worker.process.wait(timeout=30) == 1
    assert b"holds several files" in worker.process.stderr.read()


def test_script_mode_is_refused_with_a_reason(models, worker_factory, tmp_path):
    directory = save(models["binary-logistic"], tmp_path / "script", "json")
    worker = worker_factory(directory, env={"SAGEMAKER_PROGRAM": "inference.py"}, ready=False)
    assert worker.process.wait(timeout=30) == 1
    stderr = worker.process.stderr.read()
    assert b"script mode" in stderr and b"SAGEMAKER_PROGRAM=inference.py" in stderr, stderr

"""Strait against the serving stacks users would pick instead, on the same machine, models and payloads.

Started by Benchmarks/peers/run, which sets up the venv, nginx and wrk first. Every target serves the two models
of Benchmarks/xgboost/train_models.py and is checked against XGBoost's own predictions before it is timed:

    strait-zonal      Strait's built-in XGBoost runtime, one instance, through the zonal endpoint of its zone
    strait-regional   the same instance through the regional endpoint
    mlserver          Seldon MLServer with mlserver-xgboost (V2 inference protocol, JSON)
    mms               multi-model-server + sagemaker-inference (the stack of SageMaker's framework containers)
    flask             a Flask app on gunicorn implementing the SageMaker container contract
    nginx-fixed       nginx answering a fixed body: the HTTP floor, no model
    nginx-proxy       one nginx proxy hop in front of nginx-fixed: what one hop costs

Each wrk run is one (model, rows, connections, target); the runs of a round go through the targets in turn, in
an order rotated every round, so that machine drift hits all alike. Writes results.md, results.json and
latency.png to the results directory.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import sagemaker_inference

from harness.common import (PEERS, HTTPRequest, Processes, Strait, close_enough, exit_on_signals, free_port, log,
                            model_archive, run_wrk, send, train_models, tree_cpu_seconds, wait_http)

ROWS = (1, 100)
FIXED_BODY = "0.5\n"
SERVERS = PEERS / "servers"
VENV_BIN = Path(sys.executable).parent


@dataclass
class Target:
    name: str
    what: str  # one line for the report
    cpu_roots: list  # pids whose process trees do this target's work
    request: Callable  # (model, rows) -> HTTPRequest, made anew for every run (Strait's are signed)
    parse: Callable  # response body -> predictions; None for nginx, which answers FIXED_BODY


def csv_predictions(body):
    return [float(line) for line in body.decode().split()]


# --------------------------------------------------------------------------------------------------------------
# Starting the targets
# --------------------------------------------------------------------------------------------------------------

def start_strait(processes, binary, work, models):
    """One `strait serve`, one endpoint per model with one instance of the built-in XGBoost runtime."""
    strait = Strait(processes, binary, work / "strait").start(zones=3)
    for model in models.values():
        strait.create_endpoint(f"bench-{model.name}", "strait/xgboost", model_archive(model, work), instances=1)
    zones = {strait.instances(f"bench-{name}")[0]["Zone"] for name in models}
    if len(zones) != 1:
        sys.exit(f"the endpoints' instances are in different zones ({zones}); strait-zonal needs one zone")
    zone = zones.pop()

    def request(listener):
        def make(model, rows):
            url = strait.invocation_url(listener, f"bench-{model.name}")
            body = model.csv(rows).encode()
            headers = strait.sign("POST", url, body, {"Content-Type": "text/csv", "Accept": "text/csv"})
            return HTTPRequest("POST", url, body, headers)
        return make

    pids = [strait.process.pid]  # strait serve and its instances
    return [
        Target("strait-zonal", f"Strait, zonal endpoint of {zone} (built-in XGBoost, 1 instance)", pids,
               request(zone), csv_predictions),
        Target("strait-regional", "Strait, regional endpoint (same instance)", pids,
               request("regional"), csv_predictions),
    ]


def start_mlserver(processes, work, models):
    """MLServer with both models in its repository; its defaults except debug (per-request logging) off."""
    repository = work / "mlserver"
    port = free_port()
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
                "debug": False}
    repository.mkdir()
    (repository / "settings.json").write_text(json.dumps(settings))
    for model in models.values():
        (repository / model.name).mkdir()
        shutil.copy(model.path, repository / model.name / "model.json")
        (repository / model.name / "model-settings.json").write_text(json.dumps({
            "name": model.name, "implementation": "mlserver_xgboost.XGBoostModel",
            "parameters": {"uri": "./model.json"}}))
    process = processes.start("mlserver", [VENV_BIN / "mlserver", "start", repository],
                              env={"OMP_NUM_THREADS": "1"}, cwd=repository)
    wait_http(f"http://127.0.0.1:{port}/v2/health/ready", "mlserver", process=process)

    def request(model, rows):
        matrix = np.loadtxt(model.csv(rows).splitlines(), delimiter=",", ndmin=2)
        body = json.dumps({"inputs": [{"name": "input-0", "shape": list(matrix.shape), "datatype": "FP32",
                                       "data": matrix.ravel().tolist()}]}).encode()
        return HTTPRequest("POST", f"http://127.0.0.1:{port}/v2/models/{model.name}/infer", body,
                           {"Content-Type": "application/json"})

    def parse(body):
        return json.loads(body)["outputs"][0]["data"]

    return [Target("mlserver", f"MLServer {metadata.version('mlserver')} + mlserver-xgboost, V2 JSON (its default "
                               "of 1 parallel inference worker process)",
                   [process.pid], request, parse)]


def mms_config(port, path):
    """The MMS configuration sagemaker-inference's start_model_server writes (to /etc in a container), made by
    its own code, with the listeners on loopback instead of 0.0.0.0."""
    code = ("import sys; from sagemaker_inference import environment, model_server; "
            "sys.stdout.write(model_server._generate_mms_config_properties(environment.Environment(), "
            "'mms_handler_service'))")
    text = subprocess.run([sys.executable, "-c", code], env={**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port)},
                          capture_output=True, text=True, check=True).stdout
    path.write_text(text.replace("0.0.0.0", "127.0.0.1"))


def start_mms(processes, work, model):
    """multi-model-server serving one model through sagemaker-inference, as a SageMaker framework container
    does (MMS's own defaults: one worker per core)."""
    home = work / f"mms-{model.name}"
    model_dir = home / "model"
    model_dir.mkdir(parents=True)
    shutil.copy(model.path, model_dir / "xgboost-model")
    port = free_port(below=32767)
    mms_config(port, home / "config.properties")
    process = processes.start(
        f"mms-{model.name}",
        [VENV_BIN / "multi-model-server", "--start", "--foreground", "--model-store", "/",  # as in the containers
         "--mms-config", home / "config.properties",
         "--log-config", Path(sagemaker_inference.__file__).parent / "etc" / "log4j2.xml",  # the containers' own
         "--models", f"model={model_dir}"],
        env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(SERVERS), "LOG_LOCATION": str(home / "logs"),
             "TMPDIR": str(home), "TEMP": str(home)},  # MMS keeps its pid file in the temp directory
        cwd=home)
    wait_http(f"http://127.0.0.1:{port}/ping", f"mms-{model.name}", process=process)
    return port, process


def start_flask(processes, model):
    """The Flask app on gunicorn: one worker per core, threaded workers so connections are kept alive."""
    port = free_port()
    process = processes.start(
        f"flask-{model.name}",
        [VENV_BIN / "gunicorn", "--worker-class", "gthread", "--workers", "2", "--threads", "1",
         "--keep-alive", "75", "--bind", f"127.0.0.1:{port}", "--chdir", SERVERS, "flask_app:app"],
        env={"OMP_NUM_THREADS": "1", "MODEL_PATH": str(model.path)})
    wait_http(f"http://127.0.0.1:{port}/ping", f"flask-{model.name}", process=process)
    return port, process


def per_model_targets(name, what, ports_and_processes):
    """A target served by one server per model (MMS, Flask): the SageMaker contract's /invocations, text/csv."""
    def request(model, rows):
        port = ports_and_processes[model.name][0]
        return HTTPRequest("POST", f"http://127.0.0.1:{port}/invocations", model.csv(rows).encode(),
                           {"Content-Type": "text/csv", "Accept": "text/csv"})
    pids = [process.pid for _, process in ports_and_processes.values()]
    return Target(name, what, pids, request, csv_predictions)


NGINX_CONFIG = """\
daemon off;
worker_processes auto;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    # The floor: a fixed answer, no model.
    server {{
        listen 127.0.0.1:{fixed};
        location / {{ default_type text/csv; return 200 "{body}"; }}
    }}
    # One hop: proxy to the floor over kept-alive upstream connections.
    upstream floor {{ server 127.0.0.1:{fixed}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://floor;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def start_nginx(processes, work):
    home = work / "nginx"
    home.mkdir()
    fixed, proxy = free_port(), free_port()
    (home / "nginx.conf").write_text(NGINX_CONFIG.format(home=home, fixed=fixed, proxy=proxy,
                                                         body=FIXED_BODY.replace("\n", "\\n")))
    process = processes.start("nginx", ["nginx", "-p", home, "-c", home / "nginx.conf", "-e", home / "error.log"])
    wait_http(f"http://127.0.0.1:{proxy}/", "nginx", process=process)

    def request(port):
        return lambda model, rows: HTTPRequest("POST", f"http://127.0.0.1:{port}/", model.csv(rows).encode(),
                                               {"Content-Type": "text/csv"})
    return [
        Target("nginx-fixed", "nginx, fixed body (HTTP floor, no model)", [process.pid], request(fixed), None),
        Target("nginx-proxy", "nginx proxy hop to nginx-fixed (same nginx; CPU counts both)", [process.pid],
               request(proxy), None),
    ]


def start_targets(processes, binary, work, models, wanted):
    targets = []
    if {"strait-zonal", "strait-regional"} & wanted:
        log("starting strait serve and its endpoints")
        targets += start_strait(processes, binary, work, models)
    if "mlserver" in wanted:
        log("starting MLServer")
        targets += start_mlserver(processes, work, models)
    if "mms" in wanted:
        log("starting multi-model-server (one per model)")
        servers = {name: start_mms(processes, work, model) for name, model in models.items()}
        targets.append(per_model_targets(
            "mms", f"multi-model-server {metadata.version('multi-model-server')} + sagemaker-inference "
                   f"{metadata.version('sagemaker-inference')}, one server per model", servers))
    if "flask" in wanted:
        log("starting Flask/gunicorn (one per model)")
        servers = {name: start_flask(processes, model) for name, model in models.items()}
        targets.append(per_model_targets(
            "flask", "Flask + gunicorn (2 gthread workers), SageMaker contract, one server per model", servers))
    if {"nginx-fixed", "nginx-proxy"} & wanted:
        log("starting nginx")
        targets += start_nginx(processes, work)
    return [t for t in targets if t.name in wanted]


# --------------------------------------------------------------------------------------------------------------
# Checking and timing
# --------------------------------------------------------------------------------------------------------------

def check(target, models, timeout=180.0):
    """Every payload once: XGBoost's own predictions within 1e-5 relative (nginx: its fixed body). Waits for the
    first answer, since some servers load their model after they answer their health check."""
    deadline = time.monotonic() + timeout
    for model in models.values():
        for rows in ROWS:
            while True:
                status, body = send(target.request(model, rows))
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if status != 200:
                sys.exit(f"{target.name}: {model.name} x {rows} rows answered {status}: {body[:300]!r}")
            if target.parse is None:
                ok = body.decode() == FIXED_BODY
            else:
                ok = close_enough(target.parse(body), model.expected(model.csv(rows)))
            if not ok:
                sys.exit(f"{target.name}: wrong answer for {model.name} x {rows} rows: {body[:300]!r}")
    log(f"{target.name}: {'answers match XGBoost' if target.parse else 'answers its fixed body'}")


def measure(target, request, connections, seconds, work):
    before = tree_cpu_seconds(target.cpu_roots)
    report = run_wrk(request, connections, seconds, work)
    report["cpu_us_per_request"] = (tree_cpu_seconds(target.cpu_roots) - before) * 1e6 / max(report["requests"], 1)
    return report


def run_rounds(targets, models, args, work):
    cases = [(model, rows) for model in models.values() for rows in ROWS]
    if args.warmup:
        log(f"warm-up: {args.warmup} s per target and payload at 16 connections")
        for model, rows in cases:
            for target in targets:
                run_wrk(target.request(model, rows), 16, args.warmup, work)
    runs = []
    for round_index in range(args.rounds):
        log(f"round {round_index + 1} of {args.rounds}")
        order = targets[round_index % len(targets):] + targets[:round_index % len(targets)]
        for model, rows in cases:
            for connections in args.connections:
                for target in order:
                    report = measure(target, target.request(model, rows), connections, args.duration, work)
                    report.update(round=round_index + 1, model=model.name, rows=rows, connections=connections,
                                  target=target.name)
                    runs.append(report)
                    log(f"  {model.name:5} {rows:3} rows c={connections:<2} {target.name:16} "
                        f"p50 {report['p50']:7,d} µs  p99 {report['p99']:7,d} µs  {report['rps']:9,.0f} req/s  "
                        f"cpu {report['cpu_us_per_request']:7,.0f} µs/req  errors {report['errors']}")
    return runs


# --------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------

def median_of(runs, model, rows, connections, target, key):
    values = [r[key] for r in runs
              if (r["model"], r["rows"], r["connections"], r["target"]) == (model, rows, connections, target)]
    return statistics.median(values) if values else None


def cell(value, reference, digits=0):
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    if reference:
        text += f" ({value / reference:.2g}×)" if value / reference < 10 else f" ({value / reference:,.0f}×)"
    return text


def command_output(argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
        return (result.stdout + result.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def environment_lines(args):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    packages = ", ".join(f"{name} {metadata.version(name)}" for name in (
        "xgboost-cpu", "numpy", "mlserver", "mlserver-xgboost", "uvloop", "multi-model-server",
        "sagemaker-inference", "flask", "gunicorn"))
    commit = command_output(["git", "-C", str(PEERS), "describe", "--always", "--dirty"])
    return [
        f"- Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}; "
        f"load average at start {os.getloadavg()[0]:.2f}",
        f"- Strait: `{args.strait}` (checkout {commit}); {command_output(['nginx', '-v'])}; "
        f"{command_output(['wrk', '-v'])}; "
        f"{command_output(['java', '-version'])}; Python {platform.python_version()}",
        f"- Python packages: {packages}",
        f"- wrk runs of {args.duration} s, {args.rounds} round(s) interleaved over the targets, "
        f"{args.warmup} s warm-up; connections {', '.join(map(str, args.connections))}; "
        "every Python XGBoost server with OMP_NUM_THREADS=1",
    ]


def write_report(targets, models, runs, args, results):
    connections = args.connections
    reference = "strait-zonal" if any(t.name == "strait-zonal" for t in targets) else None
    lines = ["# Strait and its peers: XGBoost serving on one machine", ""]
    lines += environment_lines(args)
    lines += ["", "Latency at 1 connection (wrk percentiles, µs), throughput, and the servers' CPU time per request "
              "(user + system of each server's process tree, from /proc). In parentheses: the value divided by "
              "Strait-zonal's (latency and CPU: higher is worse; req/s: lower is worse). Medians over rounds.", ""]
    for target in targets:
        lines.append(f"- **{target.name}**: {target.what}")
    for model in models.values():
        for rows in ROWS:
            lines += ["", f"## {model.name} model ({model.booster.num_boosted_rounds()} trees, {model.features} "
                          f"features), {rows} row{'s' if rows > 1 else ''} per call", ""]
            header = ["target", "p50 µs", "p90 µs", "p99 µs"]
            header += [f"req/s c={c}" for c in connections if c > 1]
            header += [f"CPU µs/req c={c}" for c in (connections[0], connections[-1])]
            header.append("errors")
            lines += ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
            first = connections[0]
            for target in targets:
                row = [target.name]
                for key in ("p50", "p90", "p99"):
                    ref = median_of(runs, model.name, rows, first, reference, key) if reference else None
                    row.append(cell(median_of(runs, model.name, rows, first, target.name, key), ref))
                for c in connections:
                    if c > 1:
                        ref = median_of(runs, model.name, rows, c, reference, "rps") if reference else None
                        row.append(cell(median_of(runs, model.name, rows, c, target.name, "rps"), ref))
                for c in (connections[0], connections[-1]):
                    ref = median_of(runs, model.name, rows, c, reference, "cpu_us_per_request") if reference else None
                    row.append(cell(median_of(runs, model.name, rows, c, target.name, "cpu_us_per_request"), ref))
                row.append(str(sum(r["errors"] for r in runs if (r["model"], r["rows"], r["target"]) ==
                                   (model.name, rows, target.name))))
                lines.append("| " + " | ".join(row) + " |")
    if reference and "small" in models:
        lines += issue_targets(runs)
    lines += ["", f"![latency percentiles at {connections[0]} connection](latency.png)", ""]
    (results / "results.md").write_text("\n".join(lines))
    (results / "results.json").write_text(json.dumps({"runs": runs, "environment": environment_lines(args)},
                                                     indent=1))
    chart(targets, models, runs, connections[0], results / "latency.png")
    log(f"wrote {results / 'results.md'}, results.json and latency.png")


def issue_targets(runs):
    """Issue 8's targets, on the small model with 1 row: met or not, with the figures."""
    def value(target, c, key):
        return median_of(runs, "small", 1, c, target, key)
    lines = ["", "## Issue 8's targets (small model, 1 row)", "", "| target | measured | |", "|---|---:|---|"]

    def verdict(ok):
        return "met" if ok else "**not met**"
    p50, p99 = value("strait-zonal", 1, "p50"), value("strait-zonal", 1, "p99")
    if p50 is not None:
        lines.append(f"| strait-zonal p50 ≤ 120 µs at c=1 | {p50:,.0f} µs | {verdict(p50 <= 120)} |")
        lines.append(f"| strait-zonal p99 ≤ 400 µs at c=1 | {p99:,.0f} µs | {verdict(p99 <= 400)} |")
    rps = value("strait-zonal", 64, "rps")
    if rps is not None:
        lines.append(f"| strait-zonal ≥ 10,000 req/s at c=64 | {rps:,.0f} req/s | {verdict(rps >= 10_000)} |")
    for peer in ("mlserver", "mms", "flask"):
        peer_p50 = value(peer, 1, "p50")
        if peer_p50 is not None and p50:
            lines.append(f"| {peer} p50 ≥ 10× strait-zonal's at c=1 | {peer_p50 / p50:.1f}× ({peer_p50:,.0f} µs) | "
                         f"{verdict(peer_p50 >= 10 * p50)} |")
    return lines if len(lines) > 5 else []


def chart(targets, models, runs, connections, path):
    """p50, p90 and p99 of every target side by side, one panel per model and payload, log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [(model, rows) for model in models.values() for rows in ROWS]
    figure, axes = plt.subplots(2, 2, figsize=(14, 9), squeeze=False)
    width = 0.27
    for axis, (model, rows) in zip(axes.ravel(), cases):
        positions = np.arange(len(targets))
        for index, key in enumerate(("p50", "p90", "p99")):
            values = [median_of(runs, model.name, rows, connections, t.name, key) or np.nan for t in targets]
            axis.bar(positions + (index - 1) * width, values, width, label=key)
        axis.set_yscale("log")
        axis.set_xticks(positions, [t.name for t in targets], rotation=30, ha="right")
        axis.set_ylabel("latency, µs (log)")
        axis.set_title(f"{model.name} model, {rows} row{'s' if rows > 1 else ''}, {connections} connection")
        axis.grid(axis="y", which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# --------------------------------------------------------------------------------------------------------------

ALL_TARGETS = ["strait-zonal", "strait-regional", "mlserver", "mms", "flask", "nginx-fixed", "nginx-proxy"]


def parse_arguments():
    parser = argparse.ArgumentParser(prog="Benchmarks/peers/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--strait", required=True, help="the strait binary (release build)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target and payload")
    parser.add_argument("--connections", default="1,16,64", help="wrk connections per run (default 1,16,64)")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma-separated subset of the targets")
    parser.add_argument("--results", type=Path, help="results directory (default results/<date-time>)")
    parser.add_argument("--quick", action="store_true", help="check the harness: 1 s runs, 1 round, 1 s warm-up")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 1, 1, 1
    args.connections = [int(c) for c in args.connections.split(",")]
    wanted = args.targets.split(",")
    unknown = set(wanted) - set(ALL_TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {', '.join(ALL_TARGETS)}")
    args.targets = [t for t in ALL_TARGETS if t in wanted]
    args.results = args.results or PEERS / "results" / time.strftime("%Y%m%d-%H%M%S")
    return args


def main():
    args = parse_arguments()
    exit_on_signals()
    args.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="strait-peers."))  # short: Strait's instance sockets live under it
    processes = Processes(args.results / "logs")
    try:
        log(f"training the models in {work}")
        models = train_models(sys.executable, work / "models")
        targets = start_targets(processes, args.strait, work, models, set(args.targets))
        for target in targets:
            check(target, models)
        runs = run_rounds(targets, models, args, work)
        write_report(targets, models, runs, args, args.results)
    except KeyboardInterrupt as interruption:
        log(f"interrupted ({interruption})")
        sys.exit(130)
    finally:
        log("stopping the servers")
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

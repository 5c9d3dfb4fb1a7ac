"""The zone experiment: what calling through a zone's endpoint saves when the other zone is far away, and what
happens when the caller's zone loses its instances.

Started by Benchmarks/peers/zones, which builds nfq_delay and sets up the venv first. Strait runs with two zones
(a: 127.0.1.0/24, b: 127.0.2.0/24) and one endpoint of 4 instances of the built-in XGBoost runtime, 2 per zone.
Traffic to and from zone b's instances is delayed in the kernel's OUTPUT path: an iptables NFQUEUE rule per
direction and nfq_delay holding each packet for the delay (no delay, 0.5 ms and 1 ms each way by default).

1. For each delay, interleaved: wrk through zone a's endpoint and through the regional endpoint, latency
   percentiles, and the share of calls served in zone b (from Strait's /metrics: Invocations by the serving
   instance's zone, and CrossZoneForwards).
2. The drop: clients call through zone a's endpoint (zone b delayed); mid-run zone a goes down (its instances
   get SIGKILL and cannot start again) and some seconds later comes back. Reported: failed calls, how long until
   calls are served in zone b, the share served there while zone a is down, and when zone a serves again.

The instances run the built-in runtime through a small wrapper executable (WRAPPER): given `strait/xgboost`, Strait
talks to its own workers over a Unix socket, which no packet filter sees; through the wrapper it uses loopback TCP
to the instance's zone address, as it would reach an instance on another machine.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from harness.common import (PEERS, HTTPRequest, Processes, Strait, close_enough, exit_on_signals, log, metric_sum,
                            model_archive, run_wrk, send, train_models)

ZONE_A, ZONE_B = "us-east-1a", "us-east-1b"
ZONES_CONFIG = {"zones": [
    {"name": ZONE_A, "id": "use1-az1", "subnets": [{"id": "subnet-0000000000000000a", "cidr": "127.0.1.0/24"}]},
    {"name": ZONE_B, "id": "use1-az2", "subnets": [{"id": "subnet-0000000000000000b", "cidr": "127.0.2.0/24"}]},
]}
ZONE_B_CIDR = "127.0.2.0/24"
ENDPOINT = "zones"
ROWS = 1

# The instances' image: Strait's built-in XGBoost runtime (see above), except that an instance of zone a (its
# address is in 127.0.1.0/24) cannot start while the flag file exists: zone a is down.
WRAPPER = """#!/bin/sh
case "$STRAIT_BIND_ADDRESS" in
    127.0.1.*) if [ -e '{flag}' ]; then echo "zone a is down" >&2; exit 1; fi ;;
esac
exec '{strait}' worker --runtime xgboost "$@"
"""


class DelayRules:
    """The NFQUEUE rules that send zone b's instance traffic (both directions) to nfq_delay. With --queue-bypass
    packets pass undelayed while no program is bound to the queue. Tagged with a comment, so that
    Benchmarks/peers/zones can also remove them if this process dies."""

    def __init__(self, tag, queue, ports):
        ports = ",".join(str(p) for p in sorted(ports))
        tail = ["-m", "comment", "--comment", tag, "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
        self.rules = [
            ["OUTPUT", "-o", "lo", "-p", "tcp", "-d", ZONE_B_CIDR, "-m", "multiport", "--dports", ports, *tail],
            ["OUTPUT", "-o", "lo", "-p", "tcp", "-s", ZONE_B_CIDR, "-m", "multiport", "--sports", ports, *tail],
        ]
        self.added = []

    def add(self):
        for rule in self.rules:
            subprocess.run(["iptables", "-w", "-I", *rule], check=True)
            self.added.append(rule)

    def remove(self):
        while self.added:
            subprocess.run(["iptables", "-w", "-D", *self.added.pop()], check=False)


class Delay:
    """nfq_delay holding the queue's packets for `microseconds` (nothing runs for 0) while in the `with`."""

    def __init__(self, processes, program, queue, microseconds):
        self.processes, self.program, self.queue, self.microseconds = processes, program, queue, microseconds
        self.process = None

    def __enter__(self):
        if self.microseconds:
            self.process = self.processes.start("nfq_delay", [self.program, self.queue, self.microseconds])
            time.sleep(0.3)
            if self.process.poll() is not None:
                sys.exit(f"nfq_delay exited; see {self.processes.log_path('nfq_delay')}")
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self.processes.stop(self.process)


def connect_time_us(address, port, count=200):
    """Median TCP connect time to address:port: one round trip (SYN out, SYN-ACK back)."""
    times = []
    for _ in range(count):
        with socket.socket() as s:
            start = time.perf_counter()
            s.connect((address, port))
            times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def served_shares(before, after):
    """(calls, share served in zone b, share counted as CrossZoneForwards) between two /metrics readings."""
    def delta(name, **labels):
        return (metric_sum(after, name, EndpointName=ENDPOINT, **labels)
                - metric_sum(before, name, EndpointName=ENDPOINT, **labels))
    calls = delta("Invocations")
    if not calls:
        return 0, 0.0, 0.0
    return calls, delta("Invocations", Zone=ZONE_B) / calls, delta("CrossZoneForwards") / calls


# --------------------------------------------------------------------------------------------------------------
# 1. zone a's endpoint against the regional one, per delay
# --------------------------------------------------------------------------------------------------------------

def signed_request(strait, listener, model):
    url = strait.invocation_url(listener, ENDPOINT)
    body = model.csv(ROWS).encode()
    return HTTPRequest("POST", url, body, strait.sign("POST", url, body,
                                                      {"Content-Type": "text/csv", "Accept": "text/csv"}))


def latency_runs(strait, processes, model, instances, args, work):
    runs, rtts = [], {}
    b_instance = next(i for i in instances if i["Zone"] == ZONE_B)
    a_instance = next(i for i in instances if i["Zone"] == ZONE_A)
    listeners = [ZONE_A, "regional"]
    for round_index in range(args.rounds):
        log(f"round {round_index + 1} of {args.rounds}")
        for delay in args.delays:
            with Delay(processes, args.nfq_delay, args.queue, delay):
                rtts.setdefault(delay, []).append((connect_time_us(a_instance["Address"], a_instance["Port"]),
                                                   connect_time_us(b_instance["Address"], b_instance["Port"])))
                for connections in args.connections:
                    for listener in listeners[round_index % 2:] + listeners[:round_index % 2]:
                        before = strait.metrics()
                        report = run_wrk(signed_request(strait, listener, model), connections, args.duration, work)
                        calls, in_b, cross = served_shares(before, strait.metrics())
                        report.update(round=round_index + 1, delay_us=delay, connections=connections,
                                      listener=listener, calls=calls, served_in_b=in_b, cross_zone=cross)
                        runs.append(report)
                        log(f"  delay {delay:5} µs c={connections:<2} {listener:10} p50 {report['p50']:6,d} µs "
                            f"p90 {report['p90']:6,d} µs p99 {report['p99']:6,d} µs {report['rps']:7,.0f} req/s  "
                            f"served in b {in_b:6.1%}  CrossZoneForwards {cross:6.1%}  errors {report['errors']}")
    return runs, {d: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for d, v in rtts.items()}


# --------------------------------------------------------------------------------------------------------------
# 2. dropping zone a's instances under load
# --------------------------------------------------------------------------------------------------------------

class Caller(threading.Thread):
    """One closed-loop client on a kept-alive connection: records (sent, done, status or error) per call."""

    def __init__(self, request, stop):
        super().__init__(daemon=True)
        self.request, self.stop = request, stop
        self.calls = []
        parts = urlsplit(request.url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}

    def run(self):
        connection = None
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                connection.request("POST", self.path, body=self.request.body, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
                outcome = response.status if response.status == 200 else f"{response.status} {body[:200]!r}"
            except (OSError, http.client.HTTPException) as error:
                outcome = f"{type(error).__name__}: {error}"
                if connection is not None:
                    connection.close()
                connection = None
            self.calls.append((sent, time.monotonic(), outcome))


def drop_run(strait, processes, model, zone_a_down, args):
    """Clients on zone a's endpoint. After args.drop_at seconds zone a goes down: its instances get SIGKILL and
    the flag file `zone_a_down` keeps their replacements from starting (the wrapper exits). args.outage seconds
    later the flag goes and Strait's retries bring zone a back."""
    request = signed_request(strait, ZONE_A, model)
    stop = threading.Event()
    callers = [Caller(request, stop) for _ in range(args.drop_connections)]
    victims = [i for i in strait.instances(ENDPOINT) if i["Zone"] == ZONE_A]
    victim_ids = {i["InstanceId"] for i in victims}
    cross_samples, replaced_samples = [], []  # (time the reading came back, value)

    def sample(every, read, into):
        while not stop.is_set():
            try:
                value = read()
            except OSError:  # a reading that timed out is a gap in the samples
                pass
            else:
                into.append((time.monotonic(), value))
            time.sleep(every)

    def cross_zone_forwards():
        return metric_sum(strait.metrics(), "CrossZoneForwards", EndpointName=ENDPOINT)

    def replacements_in_service():
        return sum(1 for i in strait.instances(ENDPOINT) if i["Zone"] == ZONE_A and i["State"] == "InService"
                   and i["InstanceId"] not in victim_ids)

    samplers = [threading.Thread(target=sample, args=(0.05, cross_zone_forwards, cross_samples), daemon=True),
                threading.Thread(target=sample, args=(0.2, replacements_in_service, replaced_samples), daemon=True)]
    starts_before = processes.log_path("strait").read_text(errors="replace").count("instance started")
    with Delay(processes, args.nfq_delay, args.queue, args.drop_delay):
        start = time.monotonic()
        for thread in callers + samplers:
            thread.start()
        time.sleep(args.drop_at)
        zone_a_down.touch()
        killed_at = time.monotonic()
        for instance in victims:
            os.kill(instance["Pid"], signal.SIGKILL)
        log(f"zone a down: killed {[i['InstanceId'] for i in victims]} (pids {[i['Pid'] for i in victims]})")
        time.sleep(args.outage)
        zone_a_down.unlink()
        up_at = time.monotonic()
        log("zone a up again: its instances may start")
        time.sleep(max(args.drop_duration - args.drop_at - args.outage, 0))
        stop.set()
        for thread in callers + samplers:
            thread.join(timeout=35)
    starts = processes.log_path("strait").read_text(errors="replace").count("instance started") - starts_before

    calls = sorted(c for caller in callers for c in caller.calls)
    failures = [(sent - killed_at, outcome) for sent, _, outcome in calls if outcome != 200]
    ok_after = [done - killed_at for sent, done, outcome in calls if outcome == 200 and sent >= killed_at]
    done_ok = [done for _, done, outcome in calls if outcome == 200]
    gaps = [b - a for a, b in zip(done_ok, done_ok[1:]) if b > killed_at]

    def cross_at(moment):
        return max((c for t, c in cross_samples if t <= moment), default=0)
    cross_before = cross_at(killed_at)
    first_cross = next((t - killed_at for t, c in cross_samples if t > killed_at and c > cross_before), None)
    back_at = next((t for t, replaced in replaced_samples if t > up_at and replaced == len(victims)), None)
    outage_calls = sum(1 for _, done, outcome in calls if outcome == 200 and killed_at <= done < up_at)

    def latencies(lo, hi):
        values = sorted((done - sent) * 1e6 for sent, done, outcome in calls if outcome == 200 and lo <= sent < hi)
        if not values:
            return None
        return {"calls": len(values), "p50": values[len(values) // 2], "p99": values[int(len(values) * 0.99)]}

    return {
        "calls": len(calls), "duration_s": calls[-1][1] - start if calls else 0,
        "down_at_s": killed_at - start, "up_at_s": up_at - start,
        "failures": len(failures), "failure_samples": failures[:10],
        "first_ok_after_kill_ms": ok_after[0] * 1e3 if ok_after else None,
        "longest_gap_between_answers_ms": max(gaps) * 1e3 if gaps else None,
        "first_cross_zone_sample_ms": first_cross * 1e3 if first_cross is not None else None,
        "cross_zone_share_while_down": ((cross_at(up_at) - cross_at(killed_at)) / outage_calls
                                        if outage_calls else None),
        "back_in_service_after_up_s": back_at - up_at if back_at is not None else None,
        "instance_starts": starts,
        "latency": {
            "before zone a went down": latencies(start, killed_at),
            "zone a down": latencies(killed_at, up_at),
            "zone a up, its instances starting": latencies(up_at, back_at or float("inf")),
            "zone a back in service": latencies(back_at, float("inf")) if back_at else None,
        },
        "cross_zone_samples": [(round(t - start, 3), c) for t, c in cross_samples],
        "replacement_samples": [(round(t - start, 3), r) for t, r in replaced_samples],
    }


# --------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------

def write_report(runs, rtts, drop, args, results):
    lines = ["# The zone experiment", "",
             f"Strait with zones a ({ZONES_CONFIG['zones'][0]['subnets'][0]['cidr']}) and b ({ZONE_B_CIDR}), "
             f"endpoint `{ENDPOINT}`: 4 instances of the built-in XGBoost runtime (small model, {ROWS} row per "
             "call), 2 per zone. Traffic to and from zone b's instances delayed by NFQUEUE + nfq_delay. "
             f"wrk runs of {args.duration} s, {args.rounds} round(s), interleaved; load average at start "
             f"{args.load_at_start:.2f}.", "",
             "| delay each way | TCP connect to a zone a / zone b instance (µs, one round trip) |", "|---|---|"]
    for delay, (a, b) in rtts.items():
        lines.append(f"| {delay} µs | {a:,.0f} / {b:,.0f} |")
    lines += ["", "Medians over rounds. *served in b*: calls whose instance is in zone b (Strait's `Invocations` by "
              "`Zone`); *CrossZoneForwards*: Strait's counter of calls served outside the caller's zone.", "",
              "| delay | connections | endpoint | p50 µs | p90 µs | p99 µs | req/s | served in b | CrossZoneForwards "
              "| errors |", "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for delay in args.delays:
        for connections in args.connections:
            for listener in (ZONE_A, "regional"):
                mine = [r for r in runs if (r["delay_us"], r["connections"], r["listener"]) ==
                        (delay, connections, listener)]
                med = {k: statistics.median(r[k] for r in mine) for k in
                       ("p50", "p90", "p99", "rps", "served_in_b", "cross_zone")}
                name = "zone a" if listener == ZONE_A else "regional"
                lines.append(f"| {delay} µs | {connections} | {name} | {med['p50']:,.0f} | {med['p90']:,.0f} | "
                             f"{med['p99']:,.0f} | {med['rps']:,.0f} | {med['served_in_b']:.1%} | "
                             f"{med['cross_zone']:.1%} | {sum(r['errors'] for r in mine)} |")
    lines += ["", f"## Zone a down under load ({args.drop_connections} Python clients on zone a's endpoint, zone "
                  f"b delayed {args.drop_delay} µs each way)", "",
              f"At {drop['down_at_s']:.1f} s zone a's instances got SIGKILL and their replacements were kept "
              f"from starting; at {drop['up_at_s']:.1f} s they were let start again.", ""]

    def fmt(value, unit, digits=1):
        return "not seen" if value is None else f"{value:,.{digits}f} {unit}"
    share = drop["cross_zone_share_while_down"]
    failed = f"- **failed calls: {drop['failures']}**"
    if drop["failure_samples"]:
        failed += " — the first (seconds after the kill: answer): " + "; ".join(
            f"{t:+.3f} s: {outcome}" for t, outcome in drop["failure_samples"])
    lines += [
        f"- calls: {drop['calls']:,} in {drop['duration_s']:.1f} s",
        failed,
        f"- spill-over: the first call sent after the kill answered after "
        f"{fmt(drop['first_ok_after_kill_ms'], 'ms')}; the longest gap between two answers was "
        f"{fmt(drop['longest_gap_between_answers_ms'], 'ms')}; CrossZoneForwards first grew in the /metrics "
        f"sample {fmt(drop['first_cross_zone_sample_ms'], 'ms', 0)} after the kill (sampled every ~50 ms)",
        f"- share of calls forwarded to zone b while zone a was down: "
        f"{'not measured' if share is None else f'{share:.1%}'}",
        f"- zone a's replacements InService {fmt(drop['back_in_service_after_up_s'], 's')} after zone a "
        f"was up again (the admin API, polled every 0.2 s); instances Strait started during the run: "
        f"{drop['instance_starts']:,} (2 replacements needed)",
    ]
    for phase, values in drop["latency"].items():
        if values:
            lines.append(f"- latency, {phase}: p50 {values['p50']:,.0f} µs, p99 {values['p99']:,.0f} µs "
                         f"({values['calls']:,} calls)")
    (results / "results.md").write_text("\n".join(lines) + "\n")
    (results / "results.json").write_text(json.dumps({"runs": runs, "connect_rtt_us": rtts, "drop": drop},
                                                     indent=1, default=str))
    log(f"wrote {results / 'results.md'} and results.json")


# --------------------------------------------------------------------------------------------------------------

def parse_arguments():
    parser = argparse.ArgumentParser(prog="Benchmarks/peers/zones", description=__doc__.split("\n\n")[0])
    parser.add_argument("--strait", required=True, help="the strait binary (release build)")
    parser.add_argument("--nfq-delay", required=True, help="the nfq_delay program")
    parser.add_argument("--rule-tag", required=True, help="the iptables comment that marks this run's rules")
    parser.add_argument("--queue", type=int, default=8471, help="the NFQUEUE number (default 8471)")
    parser.add_argument("--delays", default="0,500,1000", help="µs each way (default 0,500,1000)")
    parser.add_argument("--connections", default="1,16", help="wrk connections (default 1,16)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--drop-delay", type=int, default=500, help="µs each way during the drop (default 500)")
    parser.add_argument("--drop-connections", type=int, default=4, help="clients during the drop (default 4)")
    parser.add_argument("--drop-at", type=float, default=3, help="seconds of load before zone a goes down (3)")
    parser.add_argument("--outage", type=float, default=6, help="seconds zone a stays down (default 6)")
    parser.add_argument("--drop-duration", type=float, default=15, help="seconds of the drop run (default 15)")
    parser.add_argument("--results", type=Path, help="results directory (default results/zones-<date-time>)")
    parser.add_argument("--quick", action="store_true", help="check the harness: 1 s runs, 1 round, 10 s drop run")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.drop_at, args.outage, args.drop_duration = 1, 1, 2, 4, 10
    args.delays = [int(d) for d in args.delays.split(",")]
    args.connections = [int(c) for c in args.connections.split(",")]
    args.results = args.results or PEERS / "results" / time.strftime("zones-%Y%m%d-%H%M%S")
    args.load_at_start = os.getloadavg()[0]
    return args


def main():
    args = parse_arguments()
    exit_on_signals()
    args.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="strait-zones."))
    processes = Processes(args.results / "logs")
    rules = None
    try:
        model = train_models(sys.executable, work / "models")["small"]
        config = work / "zones.json"
        config.write_text(json.dumps(ZONES_CONFIG))
        zone_a_down = work / "zone-a-down"
        wrapper = work / "xgboost-over-tcp"
        wrapper.write_text(WRAPPER.format(strait=args.strait, flag=zone_a_down))
        wrapper.chmod(0o755)

        log("starting strait serve with zones a and b, and an endpoint of 4 instances")
        strait = Strait(processes, args.strait, work / "strait", config=config).start(zones=2)
        strait.create_endpoint(ENDPOINT, wrapper, model_archive(model, work), instances=4)
        instances = strait.instances(ENDPOINT)
        per_zone = {zone: sum(1 for i in instances if i["Zone"] == zone) for zone in (ZONE_A, ZONE_B)}
        if per_zone != {ZONE_A: 2, ZONE_B: 2}:
            sys.exit(f"expected 2 instances per zone, got {per_zone}")
        for listener in (ZONE_A, "regional"):
            status, body = send(signed_request(strait, listener, model))
            if status != 200 or not close_enough([float(x) for x in body.split()],
                                                 model.expected(model.csv(ROWS))):
                sys.exit(f"{listener}: wrong answer {status} {body[:200]!r}")
        log("predictions through zone a's endpoint and the regional one match XGBoost's")

        rules = DelayRules(args.rule_tag, args.queue, [i["Port"] for i in instances if i["Zone"] == ZONE_B])
        rules.add()
        runs, rtts = latency_runs(strait, processes, model, instances, args, work)
        log("the drop: killing zone a's instances under load")
        drop = drop_run(strait, processes, model, zone_a_down, args)
        log(f"drop: {drop['failures']} failed calls of {drop['calls']:,}")
        write_report(runs, rtts, drop, args, args.results)
    except KeyboardInterrupt as interruption:
        log(f"interrupted ({interruption})")
        sys.exit(130)
    finally:
        log("removing the iptables rules and stopping the servers")
        if rules is not None:
            rules.remove()
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""boto3 `invoke_endpoint` one call at a time through a zonal endpoint, with `strait serve` started once per
--busy-poll-us value given (alternating, so each value is measured in the same minutes as the others).

    .venv/bin/python Benchmarks/boto3-sequential.py .build/release/strait 100 0 100 0 [--calls 3000]

Prints per value: the client-side p50/p90 of invoke_endpoint (body read), `strait serve`'s CPU per call (user +
system from /proc) and its polls per call (strait_busy_polls_total), with how many ran out. Uses the end-to-end suite's StraitServer to
start the server and create a strait/echo endpoint in us-east-1a.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strait", help="the strait binary (a release build)")
    parser.add_argument("windows", nargs="+", help="--busy-poll-us values, measured in the order given")
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per value (after 300 warm-up calls)")
    options = parser.parse_args()
    os.environ["STRAIT_BIN"] = str(Path(options.strait).resolve())
    import conftest  # reads STRAIT_BIN when it starts a server

    for window in options.windows:
        server = conftest.StraitServer(tempfile.mkdtemp(prefix="strait-boto3-"), args=["--busy-poll-us", window])
        server.start()
        try:
            resources = server.resources()
            endpoint = resources.endpoint(resources.endpoint_config(resources.model(zones=["us-east-1a"])))
            runtime = server.runtime(server.runtime_endpoints()["us-east-1a"])

            def call():
                # Reading the body lets urllib3 keep the connection for the next call.
                runtime.invoke_endpoint(EndpointName=endpoint, Body=b"1,2,3", ContentType="text/csv")["Body"].read()

            for _ in range(300):
                call()
            cpu_before, polls_before = cpu_seconds(server.proc.pid), server.busy_polls()
            latencies = []
            for _ in range(options.calls):
                start = time.perf_counter_ns()
                call()
                latencies.append((time.perf_counter_ns() - start) / 1000)
            cpu_after, polls_after = cpu_seconds(server.proc.pid), server.busy_polls()
            latencies.sort()
            events, timeouts = (polls_after.get(kind, 0) - polls_before.get(kind, 0) for kind in ("event", "timeout"))
            print(f"--busy-poll-us {window}: invoke_endpoint p50 {latencies[len(latencies) // 2]:.0f} µs, "
                  f"p90 {latencies[int(len(latencies) * 0.9)]:.0f} µs; strait serve "
                  f"{1e6 * (cpu_after - cpu_before) / options.calls:.1f} µs CPU per call, "
                  f"{(events + timeouts) / options.calls:.2f} polls per call ({timeouts} ran out)", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()

import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import StraitAuth

/// The overhead benchmark: the same calls through a zonal endpoint of Strait and straight to the instance behind
/// it, interleaved, so the difference is the hop Strait adds.
@main
struct StraitBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strait-bench",
        abstract: "Measure the latency Strait adds to an invocation, against calling the instance directly."
    )

    @Option(help: "The strait binary (a release build).")
    var strait: String = "../.build/release/strait"

    @Option(help: "Requests per measurement.")
    var requests: Int = 20_000

    @Option(help: "Concurrency levels, comma separated.")
    var concurrency: String = "1,64"

    @Option(help: "Interleaved rounds per concurrency level (direct, zonal, direct, zonal, …).")
    var rounds: Int = 3

    @Option(help: "Request body size in bytes.")
    var payload: Int = 64

    @Option(
        help:
            "nginx binary for the reference hop (nginx proxying to the same instance); default: nginx on PATH or in /usr/sbin, none to skip."
    )
    var nginx: String?

    @Option(help: "Only time SigV4 verification, this many calls per round, in-process (no server started).")
    var verifyOnly: Int?

    @Flag(
        inversion: .prefixedNo,
        help:
            "Also measure a bare SwiftNIO byte forwarder to the same instance (the floor of a NIO proxy hop: no parsing, signing or routing)."
    )
    var nioFloor = true

    @Flag(
        inversion: .prefixedNo,
        help:
            "Send nginx and the bare forwarder the zonal request's signed header fields (on the instance's path /invocations); --no-signed-references sends them the direct path's plain request."
    )
    var signedReferences = true

    @Option(
        help:
            "strait serve's --busy-poll-us (how long an event loop polls before it sleeps while calls come one at a time); default: strait's own, 0 turns polling off."
    )
    var busyPollUs: Int?

    @Option(help: .hidden)
    var bareProxyServe: String?

    func run() async throws {
        if let bareProxyServe { try BareProxy.serve(bareProxyServe) }
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        guard !levels.isEmpty, requests > 0, rounds > 0 else { throw ValidationError("Nothing to run.") }
        if let verifyOnly {
            guard verifyOnly > 0 else { throw ValidationError("--verify-only needs a positive count.") }
            try VerifyBench.run(calls: verifyOnly, payload: payload)
            return
        }
        Children.stopOnInterrupt()
        let server = try BenchServer.start(
            binary: strait,
            arguments: busyPollUs.map { ["--busy-poll-us", String($0)] } ?? []
        )
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let api = server.api
        let credentials = try CredentialsFile.load(path: server.dataDirectory + "/credentials")
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sagemaker")

        func control(_ operation: String, _ json: String) async throws -> String {
            let body = Array(json.utf8)
            var headers: [(name: String, value: String)] = [
                ("host", "\(api.host):\(api.port)"), ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "SageMaker.\(operation)"),
            ]
            headers += signer.sign(method: "POST", path: "/", headers: headers, body: body)
            let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: HTTPHeaders(headers))
            let (status, answer) = try await request(
                group: group,
                host: api.host,
                port: api.port,
                head: head,
                body: body
            )
            let text = String(decoding: answer, as: UTF8.self)
            guard status == 200 else { throw ValidationError("\(operation) failed (\(status)): \(text)") }
            return text
        }

        _ = try await control("CreateModel", #"{"ModelName":"bench","PrimaryContainer":{"Image":"strait/echo"}}"#)
        _ = try await control(
            "CreateEndpointConfig",
            #"{"EndpointConfigName":"bench","ProductionVariants":[{"VariantName":"main","ModelName":"bench","InstanceType":"ml.m5.large","InitialInstanceCount":1}]}"#
        )
        _ = try await control("CreateEndpoint", #"{"EndpointName":"bench","EndpointConfigName":"bench"}"#)
        var inService = false
        for _ in 0..<200 where !inService {
            inService = try await control("DescribeEndpoint", #"{"EndpointName":"bench"}"#).contains("\"InService\"")
            if !inService { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard inService else { throw ValidationError("The endpoint did not come into service.") }
        let instance = try server.instanceAddress(endpoint: "bench")
        let zone = server.zonal(containing: instance.host) ?? server.zonals[0]

        let body = Array(repeating: UInt8(ascii: "1"), count: payload)
        var directHeaders = HTTPHeaders()
        directHeaders.add(name: "host", value: "\(instance.host):\(instance.port)")
        directHeaders.add(name: "content-type", value: "text/csv")
        directHeaders.add(name: "content-length", value: String(body.count))
        let directHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/invocations", headers: directHeaders)
        var zonalList: [(name: String, value: String)] = [
            ("host", "\(zone.host):\(zone.port)"), ("content-type", "text/csv"), ("content-length", String(body.count)),
        ]
        zonalList += signer.sign(method: "POST", path: "/endpoints/bench/invocations", headers: zonalList, body: body)
        let zonalHead = HTTPRequestHead(
            version: .http1_1,
            method: .POST,
            uri: "/endpoints/bench/invocations",
            headers: HTTPHeaders(zonalList)
        )

        let nginxProxy = try NginxProxy.binary(nginx).map { try NginxProxy.start(binary: $0, upstream: instance) }
        defer { nginxProxy?.stop() }
        var paths = [
            Path(name: "direct", host: instance.host, port: instance.port, head: directHead),
            Path(name: "zonal", host: zone.host, port: zone.port, head: zonalHead),
        ]
        // What the reference proxies are sent: by default the zonal request's header fields (the signed ones) on the
        // instance's own path, so a hop compared with Strait's includes the same client-side cost of those headers.
        var referenceHead = directHead
        if signedReferences { referenceHead.headers = zonalHead.headers }
        if let nginxProxy {
            var nginxHead = referenceHead
            nginxHead.headers.replaceOrAdd(name: "host", value: "127.0.0.1:\(nginxProxy.port)")
            paths.append(Path(name: "nginx", host: "127.0.0.1", port: nginxProxy.port, head: nginxHead))
        }
        let bareProxy = nioFloor ? try BareProxy.start(upstream: instance) : nil
        defer { bareProxy?.stop() }
        if let bareProxy {
            var bareHead = referenceHead
            bareHead.headers.replaceOrAdd(name: "host", value: "127.0.0.1:\(bareProxy.port)")
            paths.append(Path(name: "nio", host: "127.0.0.1", port: bareProxy.port, head: bareHead))
        }

        print(
            "Strait overhead benchmark: strait/echo, \(payload)-byte body, \(requests) requests per run, \(rounds) interleaved rounds"
        )
        print(
            "instance \(instance.host):\(instance.port) (direct) vs zonal endpoint \(zone.host):\(zone.port)"
                + (nginxProxy.map { " vs nginx proxy 127.0.0.1:\($0.port)" } ?? " (no nginx found: no reference hop)")
                + (bareProxy.map { " vs bare NIO forwarder 127.0.0.1:\($0.port)" } ?? "")
                + (nginxProxy != nil || bareProxy != nil
                    ? (signedReferences
                        ? "; references sent the signed headers" : "; references sent the plain request")
                    : "")
                + "; client: 1 event loop"
        )
        print("")
        print("conc  path     p50 µs   p90 µs   p99 µs     req/s  failed")
        // The servers whose CPU per call is printed (the instance serves every path, so it is left out).
        var servers: [(name: String, pids: [Int32])] = [("strait serve", [server.process.processIdentifier])]
        if let nginxProxy { servers.append(("nginx", ProcessCPU.withChildren(nginxProxy.process.processIdentifier))) }
        if let bareProxy { servers.append(("NIO forwarder", [bareProxy.process.processIdentifier])) }
        var summaries: [String] = []
        for level in levels {
            func load(_ path: Path, _ total: Int) async throws -> (latencies: [Int64], failures: Int, seconds: Double) {
                try await runLoad(
                    group: group,
                    host: path.host,
                    port: path.port,
                    head: path.head,
                    body: body,
                    total: total,
                    concurrency: level
                )
            }
            // Warm up every path (connections, pools, caches).
            for path in paths { _ = try await load(path, min(2_000, requests)) }
            var latencies = Array(repeating: [Int64](), count: paths.count)
            var seconds = Array(repeating: 0.0, count: paths.count)
            var failures = Array(repeating: 0, count: paths.count)
            let before = try await serverHistograms(group: group, api: api)
            let cpuBefore = servers.map { ProcessCPU.times($0.pids) }
            for _ in 0..<rounds {
                for (index, path) in paths.enumerated() {
                    let run = try await load(path, requests)
                    latencies[index] += run.latencies
                    seconds[index] += run.seconds
                    failures[index] += run.failures
                }
            }
            let cpuAfter = servers.map { ProcessCPU.times($0.pids) }
            let after = try await serverHistograms(group: group, api: api)
            let stats = paths.indices.map { Stats(latencies[$0], seconds: seconds[$0]) }
            for index in paths.indices { print(stats[index].row(level, paths[index].name, failures[index])) }
            let d = stats[0]
            let z = stats[1]
            print(Stats.hopRow(level, "hop", z, over: d))
            var nginxHop: Double?
            for index in paths.indices.dropFirst(2) {
                print(Stats.hopRow(level, paths[index].name + "+", stats[index], over: d))
                if paths[index].name == "nginx" { nginxHop = stats[index].p50 - d.p50 }
            }
            let serverSide = after.overhead.subtracting(before.overhead)
            let model = after.model.subtracting(before.model)
            print(
                String(
                    format:
                        "      Strait OverheadLatency (server side, from /metrics): p50 ≤ %.0f µs, p99 ≤ %.0f µs, mean %.1f µs",
                    serverSide.quantile(0.5),
                    serverSide.quantile(0.99),
                    serverSide.mean
                )
            )
            print(
                String(
                    format:
                        "      ModelLatency (Strait's write to the instance → its answer): p50 ≤ %.0f µs, mean %.1f µs",
                    model.quantile(0.5),
                    model.mean
                )
            )
            // Per call of each server's own path in the rounds.
            let calls = Double(rounds * requests)
            let polls = after.polls.subtracting(before.polls)
            print(
                String(
                    format:
                        "      Busy polls (from /metrics): %.2f per call, %.0f%% ended by an event, %.1f µs polling per call",
                    (polls.events + polls.timeouts) / calls,
                    polls.events + polls.timeouts > 0 ? 100 * polls.events / (polls.events + polls.timeouts) : 0,
                    polls.microseconds / calls
                )
            )
            let perCall = servers.indices.map { index in
                servers[index].name
                    + String(
                        format: " %.1f + %.1f µs",
                        (cpuAfter[index].user - cpuBefore[index].user) / calls * 1e6,
                        (cpuAfter[index].system - cpuBefore[index].system) / calls * 1e6
                    )
            }
            print("      CPU per call (user + system, /proc): " + perCall.joined(separator: "; "))
            print("")
            if level == 1 {
                summaries.append(
                    check("hop p50 at c=1 ≤ 50 µs", z.p50 - d.p50 <= 50, String(format: "%.1f µs", z.p50 - d.p50))
                )
                if let nginxHop {
                    summaries.append(
                        check(
                            "hop p50 at c=1 ≤ nginx's hop in the same run",
                            z.p50 - d.p50 <= nginxHop,
                            String(format: "%.1f µs vs nginx %.1f µs", z.p50 - d.p50, nginxHop)
                        )
                    )
                }
                summaries.append(
                    check(
                        "OverheadLatency p50 ≤ 25 µs",
                        serverSide.quantile(0.5) <= 25,
                        String(format: "≤ %.0f µs", serverSide.quantile(0.5))
                    )
                )
                summaries.append(
                    check(
                        "OverheadLatency p99 ≤ 150 µs",
                        serverSide.quantile(0.99) <= 150,
                        String(format: "≤ %.0f µs", serverSide.quantile(0.99))
                    )
                )
            }
            if level == 64 {
                summaries.append(
                    check("≥ 12,000 req/s at c=64", z.rate >= 12_000, String(format: "%.0f req/s", z.rate))
                )
            }
        }
        if !summaries.isEmpty {
            print("targets (issue 3):")
            for line in summaries { print("  " + line) }
        }
        try await group.shutdownGracefully()
    }

    func check(_ name: String, _ ok: Bool, _ value: String) -> String {
        "\(ok ? "met    " : "NOT MET") \(name): \(value)"
    }

    /// The OverheadLatency and ModelLatency histograms of the bench endpoint, summed over zones.
    func serverHistograms(
        group: MultiThreadedEventLoopGroup,
        api: (host: String, port: Int)
    ) async throws -> (overhead: Histogram, model: Histogram, polls: BusyPollCounts) {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "\(api.host):\(api.port)")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/metrics", headers: headers)
        let (_, body) = try await request(group: group, host: api.host, port: api.port, head: head, body: [])
        let text = String(decoding: body, as: UTF8.self)
        return (
            Histogram(prometheus: text, name: "OverheadLatency", endpoint: "bench"),
            Histogram(prometheus: text, name: "ModelLatency", endpoint: "bench"),
            BusyPollCounts(prometheus: text)
        )
    }
}

/// One way to reach the instance, measured in every round.
struct Path {
    let name: String
    let host: String
    let port: Int
    let head: HTTPRequestHead
}

/// Percentiles (µs) and rate of one path's samples.
struct Stats {
    let p50: Double
    let p90: Double
    let p99: Double
    let rate: Double

    init(_ nanoseconds: [Int64], seconds: Double) {
        let sorted = nanoseconds.sorted()
        func quantile(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000
        }
        p50 = quantile(0.5)
        p90 = quantile(0.9)
        p99 = quantile(0.99)
        rate = seconds > 0 ? Double(sorted.count) / seconds : 0
    }

    /// The latency `path` adds over `base`, at each percentile.
    static func hopRow(_ level: Int, _ name: String, _ path: Stats, over base: Stats) -> String {
        String(
            format: "%4d  %-6@ %+8.1f %+8.1f %+8.1f %+9.0f",
            level,
            name,
            path.p50 - base.p50,
            path.p90 - base.p90,
            path.p99 - base.p99,
            path.rate - base.rate
        )
    }

    func row(_ level: Int, _ path: String, _ failed: Int) -> String {
        String(format: "%4d  %-6@ %8.1f %8.1f %8.1f %9.0f  %6d", level, path, p50, p90, p99, rate, failed)
    }
}

/// A Prometheus histogram read back from text: cumulative bucket counts by upper bound.
/// Strait's `strait_busy_polls_total` and `strait_busy_poll_microseconds_total` counters.
struct BusyPollCounts {
    var events = 0.0
    var timeouts = 0.0
    var microseconds = 0.0

    init(prometheus text: String) {
        for line in text.split(separator: "\n") {
            guard let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            if line.hasPrefix("strait_busy_polls_total{result=\"event\"}") { events = value }
            if line.hasPrefix("strait_busy_polls_total{result=\"timeout\"}") { timeouts = value }
            if line.hasPrefix("strait_busy_poll_microseconds_total ") { microseconds = value }
        }
    }

    private init(events: Double, timeouts: Double, microseconds: Double) {
        (self.events, self.timeouts, self.microseconds) = (events, timeouts, microseconds)
    }

    func subtracting(_ other: BusyPollCounts) -> BusyPollCounts {
        BusyPollCounts(
            events: events - other.events,
            timeouts: timeouts - other.timeouts,
            microseconds: microseconds - other.microseconds
        )
    }
}

struct Histogram {
    var buckets: [(bound: Double, count: Double)] = []
    var sum = 0.0
    var count = 0.0

    init(prometheus text: String, name: String, endpoint: String) {
        var byBound: [Double: Double] = [:]
        for line in text.split(separator: "\n")
        where line.hasPrefix(name) && line.contains("EndpointName=\"\(endpoint)\"") {
            guard let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            if line.hasPrefix(name + "_bucket"), let range = line.range(of: "le=\"") {
                let rest = line[range.upperBound...]
                let boundText = rest.prefix { $0 != "\"" }
                let bound = boundText == "+Inf" ? Double.infinity : Double(boundText) ?? .infinity
                byBound[bound, default: 0] += value
            } else if line.hasPrefix(name + "_sum") {
                sum += value
            } else if line.hasPrefix(name + "_count") {
                count += value
            }
        }
        buckets = byBound.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    init() {}

    func subtracting(_ other: Histogram) -> Histogram {
        var result = Histogram()
        result.sum = sum - other.sum
        result.count = count - other.count
        result.buckets = buckets.map { bucket in
            (bucket.bound, bucket.count - (other.buckets.first { $0.bound == bucket.bound }?.count ?? 0))
        }
        return result
    }

    /// The upper bound of the bucket holding quantile `q`.
    func quantile(_ q: Double) -> Double {
        let target = q * count
        for bucket in buckets where bucket.count >= target { return bucket.bound }
        return .infinity
    }

    var mean: Double { count > 0 ? sum / count : .nan }
}

import Foundation
import NIOCore
import StraitCore

/// What one invocation adds to the metrics.
struct InvocationRecord {
    enum Result {
        case success
        case clientError
        case serverError
        case modelError
    }

    let endpoint: String
    let variant: String
    /// The zone of the instance that served the call ("" when none did).
    let zone: String
    let result: Result
    /// First byte written to the instance → last byte of its answer, in µs (nil when the instance was not reached).
    let modelLatency: Int64?
    /// First request byte received → last response byte written, minus the model latency, in µs.
    let overheadLatency: Int64
    /// The caller's zone was known and the instance was in another one.
    let crossZone: Bool
}

/// A latency histogram with fixed bucket bounds in microseconds.
struct LatencyHistogram {
    static let bounds: [Int64] = [
        10, 25, 50, 75, 100, 150, 250, 500, 750, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
        500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
    ]

    var counts = [UInt64](repeating: 0, count: LatencyHistogram.bounds.count + 1)
    var sum: Int64 = 0
    var count: UInt64 = 0

    mutating func record(_ microseconds: Int64) {
        var index = 0
        while index < Self.bounds.count, microseconds > Self.bounds[index] { index += 1 }
        counts[index] += 1
        sum += microseconds
        count += 1
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        sum += other.sum
        count += other.count
    }
}

/// The metrics of one endpoint, variant and zone.
struct InvocationSeries {
    var invocations: UInt64 = 0
    var clientErrors: UInt64 = 0
    var serverErrors: UInt64 = 0
    var modelErrors: UInt64 = 0
    var crossZone: UInt64 = 0
    var modelLatency = LatencyHistogram()
    var overheadLatency = LatencyHistogram()

    mutating func merge(_ other: InvocationSeries) {
        invocations += other.invocations
        clientErrors += other.clientErrors
        serverErrors += other.serverErrors
        modelErrors += other.modelErrors
        crossZone += other.crossZone
        modelLatency.merge(other.modelLatency)
        overheadLatency.merge(other.overheadLatency)
    }
}

struct SeriesKey: Hashable {
    let endpoint: String
    let variant: String
    let zone: String
}

/// One event loop's metrics; only touched on its loop, merged on scrape.
struct LoopMetrics {
    /// Changed only by `record` and `merge`, which keep `last` right.
    private(set) var series: [SeriesKey: InvocationSeries] = [:]
    /// Failures before an endpoint was known (bad signature, unknown endpoint…), by HTTP status class.
    var unroutedClientErrors: UInt64 = 0
    var unroutedServerErrors: UInt64 = 0

    /// Where the last recorded series sits. A loop's calls mostly go to one endpoint, variant and zone, and their
    /// strings are the routing snapshot's own, equal to the last key's at once (same storage): the key is then not
    /// hashed again. An insertion may move entries, so the index is looked up again after one; a merge forgets it.
    private var last: (key: SeriesKey, index: Dictionary<SeriesKey, InvocationSeries>.Index)?

    mutating func record(_ record: InvocationRecord) {
        if let last, last.key.endpoint == record.endpoint, last.key.variant == record.variant,
            last.key.zone == record.zone
        {
            series.values[last.index].add(record)
            return
        }
        let key = SeriesKey(endpoint: record.endpoint, variant: record.variant, zone: record.zone)
        let index: Dictionary<SeriesKey, InvocationSeries>.Index
        if let found = series.index(forKey: key) {
            index = found
        } else {
            series[key] = InvocationSeries()
            index = series.index(forKey: key)!
        }
        series.values[index].add(record)
        last = (key, index)
    }

    mutating func merge(_ other: LoopMetrics) {
        last = nil
        for (key, series) in other.series { self.series[key, default: InvocationSeries()].merge(series) }
        unroutedClientErrors += other.unroutedClientErrors
        unroutedServerErrors += other.unroutedServerErrors
    }
}

extension InvocationSeries {
    mutating func add(_ record: InvocationRecord) {
        invocations += 1
        switch record.result {
        case .success: break
        case .clientError: clientErrors += 1
        case .serverError: serverErrors += 1
        case .modelError: modelErrors += 1
        }
        if record.crossZone { crossZone += 1 }
        if let model = record.modelLatency { modelLatency.record(model) }
        overheadLatency.record(record.overheadLatency)
    }
}

/// Renders merged metrics as Prometheus text, with SageMaker's metric names and dimensions.
enum PrometheusText {
    static func render(
        _ metrics: LoopMetrics,
        outstanding: [(endpoint: String, variant: String, instance: InstanceRoute)],
        polls: PollOutcomes = PollOutcomes()
    )
        -> String
    {
        var out = ""
        let series = metrics.series.sorted {
            ($0.key.endpoint, $0.key.variant, $0.key.zone) < ($1.key.endpoint, $1.key.variant, $1.key.zone)
        }
        func labels(_ key: SeriesKey) -> String {
            "EndpointName=\"\(escape(key.endpoint))\",VariantName=\"\(escape(key.variant))\",Zone=\"\(escape(key.zone))\""
        }
        let counters: [(String, String, (InvocationSeries) -> UInt64)] = [
            (
                "Invocations", "Invocations of the endpoint, by the variant and zone that served them.",
                { $0.invocations }
            ),
            ("Invocation4XXErrors", "Invocations answered with a 4xx status (not model errors).", { $0.clientErrors }),
            ("Invocation5XXErrors", "Invocations answered with a 5xx status.", { $0.serverErrors }),
            (
                "InvocationModelErrors", "Invocations whose model answered with an error or not at all (ModelError).",
                { $0.modelErrors }
            ),
            ("CrossZoneForwards", "Invocations served by an instance outside the caller's zone.", { $0.crossZone }),
        ]
        for (name, help, value) in counters {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for (key, entry) in series { out += "\(name){\(labels(key))} \(value(entry))\n" }
        }
        let histograms: [(String, String, (InvocationSeries) -> LatencyHistogram)] = [
            (
                "ModelLatency",
                "Microseconds from the first byte written to the instance to the last byte of its answer.",
                { $0.modelLatency }
            ),
            (
                "OverheadLatency",
                "Microseconds Strait added: first request byte received to last response byte written, minus ModelLatency.",
                { $0.overheadLatency }
            ),
        ]
        for (name, help, value) in histograms {
            out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            for (key, entry) in series {
                let histogram = value(entry)
                var cumulative: UInt64 = 0
                for (index, bound) in LatencyHistogram.bounds.enumerated() {
                    cumulative += histogram.counts[index]
                    out += "\(name)_bucket{\(labels(key)),le=\"\(bound)\"} \(cumulative)\n"
                }
                out += "\(name)_bucket{\(labels(key)),le=\"+Inf\"} \(histogram.count)\n"
                out += "\(name)_sum{\(labels(key))} \(histogram.sum)\n"
                out += "\(name)_count{\(labels(key))} \(histogram.count)\n"
            }
        }
        out += "# HELP InvocationErrorsUnrouted Invocations refused before an endpoint was known, by status class.\n"
        out += "# TYPE InvocationErrorsUnrouted counter\n"
        out += "InvocationErrorsUnrouted{Class=\"4XX\"} \(metrics.unroutedClientErrors)\n"
        out += "InvocationErrorsUnrouted{Class=\"5XX\"} \(metrics.unroutedServerErrors)\n"
        out += "# HELP OutstandingRequests Invocations in flight on each instance.\n# TYPE OutstandingRequests gauge\n"
        for entry in outstanding {
            out +=
                "OutstandingRequests{EndpointName=\"\(escape(entry.endpoint))\",VariantName=\"\(escape(entry.variant))\",Zone=\"\(escape(entry.instance.zone))\",Instance=\"\(escape(entry.instance.id))\"} \(entry.instance.outstanding.value)\n"
        }
        out += "# HELP strait_busy_polls_total Polls of an event loop before it slept (--busy-poll-us), by how they "
        out += "ended: an event, or the window (or another call) first.\n# TYPE strait_busy_polls_total counter\n"
        out += "strait_busy_polls_total{result=\"event\"} \(polls.events)\n"
        out += "strait_busy_polls_total{result=\"timeout\"} \(polls.timeouts)\n"
        out +=
            "# HELP strait_busy_poll_microseconds_total Microseconds event loops spent polling instead of sleeping.\n"
        out += "# TYPE strait_busy_poll_microseconds_total counter\n"
        out += "strait_busy_poll_microseconds_total \(polls.nanoseconds / 1000)\n"
        return out
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

import Testing

@testable import StraitDataPlane

@Suite struct LoopMetricsTests {
    func record(
        _ endpoint: String,
        _ variant: String,
        _ zone: String,
        _ result: InvocationRecord.Result,
        model: Int64?
    )
        -> InvocationRecord
    {
        InvocationRecord(
            endpoint: endpoint,
            variant: variant,
            zone: zone,
            result: result,
            modelLatency: model,
            overheadLatency: 20,
            crossZone: zone == "b"
        )
    }

    @Test func callsAlternatingBetweenSeriesAreAllCounted() {
        var metrics = LoopMetrics()
        // Runs of calls to one series, then another, then back: the one kept aside and the settled ones add up.
        let plan: [(String, String, String)] = [
            ("e", "v", "a"), ("e", "v", "a"), ("e", "w", "a"), ("e", "v", "a"), ("f", "v", "a"), ("e", "v", "b"),
            ("e", "v", "a"),
        ]
        for (endpoint, variant, zone) in plan {
            metrics.record(record(endpoint, variant, zone, .success, model: 100))
        }
        metrics.record(record("e", "v", "a", .modelError, model: 7))
        metrics.record(record("e", "v", "", .serverError, model: nil))
        let series = metrics.series
        #expect(series.count == 5)
        let ea = series[SeriesKey(endpoint: "e", variant: "v", zone: "a")]
        #expect(ea?.invocations == 5)
        #expect(ea?.modelErrors == 1)
        #expect(ea?.modelLatency.count == 5)
        #expect(ea?.modelLatency.sum == 407)
        #expect(ea?.overheadLatency.count == 5)
        #expect(series[SeriesKey(endpoint: "e", variant: "w", zone: "a")]?.invocations == 1)
        #expect(series[SeriesKey(endpoint: "f", variant: "v", zone: "a")]?.invocations == 1)
        #expect(series[SeriesKey(endpoint: "e", variant: "v", zone: "b")]?.crossZone == 1)
        let unserved = series[SeriesKey(endpoint: "e", variant: "v", zone: "")]
        #expect(unserved?.serverErrors == 1)
        #expect(unserved?.modelLatency.count == 0)
        // Reading does not change what is recorded.
        #expect(metrics.series[SeriesKey(endpoint: "e", variant: "v", zone: "a")]?.invocations == 5)
    }

    @Test func theLastSeriesStaysRightAsTheTableGrowsAndIsCopied() {
        // The last series' slot is reused while calls repeat it; new series grow the table (and move its entries),
        // and a scrape copies the metrics between calls.
        var metrics = LoopMetrics()
        var scraped: [LoopMetrics] = []
        for round in 0..<3 {
            for endpoint in 0..<40 {
                for _ in 0..<3 { metrics.record(record("e\(endpoint)", "v", "a", .success, model: 1)) }
                if endpoint % 7 == 0 { scraped.append(metrics) }
            }
            #expect(metrics.series.count == 40, "round \(round)")
        }
        for endpoint in 0..<40 {
            #expect(metrics.series[SeriesKey(endpoint: "e\(endpoint)", variant: "v", zone: "a")]?.invocations == 9)
        }
        // A copy taken earlier keeps what it had.
        #expect(scraped[0].series.count == 1)
        #expect(scraped[0].series[SeriesKey(endpoint: "e0", variant: "v", zone: "a")]?.invocations == 3)
    }

    @Test func mergingLoopsAddsEverySeriesAndCounter() {
        var first = LoopMetrics()
        var second = LoopMetrics()
        first.record(record("e", "v", "a", .success, model: 10))
        first.record(record("e", "w", "a", .clientError, model: nil))
        second.record(record("e", "v", "a", .success, model: 30))
        second.unroutedClientErrors = 2
        first.unroutedServerErrors = 1
        var merged = LoopMetrics()
        merged.merge(first)
        merged.merge(second)
        let ea = merged.series[SeriesKey(endpoint: "e", variant: "v", zone: "a")]
        #expect(ea?.invocations == 2)
        #expect(ea?.modelLatency.sum == 40)
        #expect(merged.series[SeriesKey(endpoint: "e", variant: "w", zone: "a")]?.clientErrors == 1)
        #expect(merged.unroutedClientErrors == 2)
        #expect(merged.unroutedServerErrors == 1)
    }
}

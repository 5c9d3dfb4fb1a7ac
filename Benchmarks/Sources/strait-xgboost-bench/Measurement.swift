import Foundation

/// Why the benchmark cannot go on.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Deterministic inputs: SplitMix64, so every run predicts the same rows.
struct RandomRows {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    private mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// `rowCount * featureCount` standard normal values (the distribution the models were trained on), each NaN
    /// (missing) with probability `missing`.
    mutating func rows(_ rowCount: Int, featureCount: Int, missing: Double) -> [Float] {
        (0..<rowCount * featureCount).map { _ in
            if uniform() < missing { return .nan }
            // Box–Muller; 1 - uniform() is in (0, 1], so the logarithm is finite.
            return Float((-2 * log(1 - uniform())).squareRoot() * cos(2 * Double.pi * uniform()))
        }
    }
}

/// A monotonic clock reading in nanoseconds (`clock_gettime`, a vDSO call: tens of nanoseconds).
@inline(__always)
func nanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Keeps a prediction alive, so the optimizer cannot drop the call that made it.
@inline(never)
@_optimize(none)
func blackHole(_ value: Float) {}

/// Median and 90th percentile of per-call durations, in microseconds.
struct Latency {
    let p50: Double
    let p90: Double

    init(_ nanoseconds: [UInt64]) {
        let sorted = nanoseconds.sorted()
        func quantile(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000
        }
        p50 = quantile(0.5)
        p90 = quantile(0.9)
    }
}

/// Whether two predictions agree: within a relative 1e-6 (the absolute floor of 1e-12 keeps exact zeros comparable).
func agree(_ a: Float, _ b: Float) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-6)
}

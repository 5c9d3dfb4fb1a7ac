import ArgumentParser
import Foundation
import StraitXGBoost

/// The XGBoost prediction benchmark (issue 5): Strait's own predictor (`StraitXGBoost`) against XGBoost's C API
/// (`XGBoosterPredictFromDense`, one thread) on the same models and the same rows. Predictions are checked for
/// agreement first; then the predictors take turns, round after round, so drift in the machine's speed hits all
/// alike.
///
/// The C API runs two ways: with a NULL DMatrix, as XGBoost's Python `inplace_predict` calls it, and with one proxy
/// DMatrix made up front and passed to every call. Neither is faster in every case, so Strait is compared with the
/// faster of the two.
@main
struct XGBoostBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strait-xgboost-bench",
        abstract: "Compare Strait's XGBoost prediction with XGBoost's own C API, one thread each."
    )

    @Option(
        name: .customLong("model"),
        help: "An XGBoost model file (JSON or UBJSON), or a directory of them (smallest first). Repeatable."
    )
    var models: [String] = []

    @Option(help: "XGBoost's shared library: xgboost/lib/libxgboost.so inside the xgboost-cpu wheel.")
    var libxgboost: String

    @Option(help: "Timed calls per predictor per round.")
    var iterations: Int = 2_000

    @Option(help: "Interleaved rounds (Strait, C API, Strait, C API, …).")
    var rounds: Int = 5

    @Option(help: "Rows per call, comma separated.")
    var rows: String = "1,100"

    /// Distinct input rows per model; a case cycles through them in batches, so neither predictor sees one row over
    /// and over (which would let branch predictors learn its paths).
    static let inputRowCount = 1_000
    /// The fraction of input values that are NaN (missing).
    static let missing = 0.1

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("Give at least one --model.") }
        guard iterations > 0, rounds > 0 else { throw ValidationError("--iterations and --rounds must be positive.") }
        guard !rowCounts.isEmpty, rowCounts.allSatisfy({ (1...Self.inputRowCount).contains($0) }) else {
            throw ValidationError("--rows must list row counts in 1...\(Self.inputRowCount).")
        }
    }

    var rowCounts: [Int] { rows.split(separator: ",").compactMap { Int($0) } }

    func run() throws {
        let library = try XGBoostLibrary(path: libxgboost)
        let paths = try modelPaths()
        print("XGBoost prediction benchmark: Strait (StraitXGBoost) vs XGBoost \(library.versionString)'s C API")
        print("C API: XGBoosterPredictFromDense, nthread=1, array interface built once per input batch; \(libxgboost)")
        print(
            "  \"C API\": DMatrix argument NULL (as Python's inplace_predict); \"C API+proxy\": one proxy DMatrix, reused"
        )
        print(
            "\(iterations) timed calls per predictor per round, \(rounds) interleaved rounds; \(Self.inputRowCount) random rows per model (\(Int(Self.missing * 100))% NaN), cycled"
        )
        var summaries: [String] = []
        for path in paths {
            let name = URL(fileURLWithPath: path).lastPathComponent
            let model: XGBoostModel
            do {
                model = try XGBoostModel(modelFile: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            } catch {
                throw BenchError("Strait cannot load \(path): \(error)")
            }
            let booster = try CAPIBooster(library: library, modelPath: path)
            guard booster.featureCount == model.featureCount else {
                throw BenchError(
                    "\(name): Strait reads \(model.featureCount) features, XGBoost \(booster.featureCount)."
                )
            }
            print("")
            let trees =
                model.groupCount == 1
                ? "\(booster.boostedRounds) trees" : "\(booster.boostedRounds) rounds × \(model.groupCount) groups"
            print("\(name): \(trees), \(model.featureCount) features, \(model.objective)")
            print("  rows  predictor       p50 µs     p90 µs   C API / Strait (p50)")
            var generator = RandomRows(seed: 0x5EED_0000 &+ UInt64(model.featureCount))
            let inputs = generator.rows(Self.inputRowCount, featureCount: model.featureCount, missing: Self.missing)
            for rowCount in rowCounts {
                let bench = BenchCase(model: model, booster: booster, inputs: inputs, rowCount: rowCount)
                let check = try bench.verify()
                print(String(format: "  %4d  check: %@", rowCount, check))
                let result = try bench.measure(iterations: iterations, rounds: rounds)
                let strait = result.strait
                print(String(format: "  %4d  %@ %9.2f  %9.2f", rowCount, pad("Strait"), strait.p50, strait.p90))
                for (label, capi) in [("C API", result.capi), ("C API+proxy", result.capiProxy)] {
                    print(
                        String(
                            format: "  %4d  %@ %9.2f  %9.2f   %6.2f×",
                            rowCount,
                            pad(label),
                            capi.p50,
                            capi.p90,
                            capi.p50 / strait.p50
                        )
                    )
                }
                if rowCount == 1 || rowCount == 100 {
                    let fastest = min(result.capi.p50, result.capiProxy.p50)
                    let ratio = fastest / strait.p50
                    let target = rowCount == 1 ? 3.0 : 1.0
                    summaries.append(
                        String(
                            format: "%@ %@, %d row%@: fastest C API / Strait ≥ %.0f×: %.2f× (%.2f µs vs %.2f µs)",
                            ratio >= target ? "met    " : "NOT MET",
                            name,
                            rowCount,
                            rowCount == 1 ? "" : "s",
                            target,
                            ratio,
                            fastest,
                            strait.p50
                        )
                    )
                }
            }
        }
        if !summaries.isEmpty {
            print("")
            print("targets (issue 5: ≥ 3× faster than the C API for 1 row, at least as fast for 100 rows):")
            for line in summaries { print("  " + line) }
        }
    }

    /// `text` padded with spaces to the width of the predictor column (`%-12@` does not pad on Linux).
    func pad(_ text: String) -> String {
        text + String(repeating: " ", count: max(0, 12 - text.count))
    }

    /// The model files to run: each `--model` file, and the `.json` and `.ubj` files of each `--model` directory,
    /// smallest first.
    func modelPaths() throws -> [String] {
        var paths: [String] = []
        for entry in models {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: entry, isDirectory: &isDirectory) else {
                throw BenchError("No such model file or directory: \(entry)")
            }
            guard isDirectory.boolValue else {
                paths.append(entry)
                continue
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: entry)
                .filter { $0.hasSuffix(".json") || $0.hasSuffix(".ubj") }
                .map { entry + "/" + $0 }
            guard !files.isEmpty else { throw BenchError("\(entry) holds no .json or .ubj model.") }
            let sizes = try files.map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int ?? 0 }
            paths += zip(files, sizes).sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
        }
        return paths
    }
}

/// One model at one batch size: the input rows cut into batches of `rowCount`, each with its array interface text
/// built up front, so a timed call does nothing but predict.
final class BenchCase {
    let model: XGBoostModel
    let booster: CAPIBooster
    let rowCount: Int
    /// The input rows, `inputRowCount * featureCount` values.
    private let storage: UnsafeMutableBufferPointer<Float>
    /// Consecutive batches of `rowCount` rows in ``storage``.
    private let batches: [UnsafeBufferPointer<Float>]
    /// Each batch's `__array_interface__` JSON, NUL-terminated.
    private let interfaces: [UnsafeMutablePointer<CChar>]
    /// Strait's output: `rowCount * groupCount` values.
    private let output: UnsafeMutableBufferPointer<Float>

    init(model: XGBoostModel, booster: CAPIBooster, inputs: [Float], rowCount: Int) {
        self.model = model
        self.booster = booster
        self.rowCount = rowCount
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: inputs.count)
        _ = storage.initialize(from: inputs)
        let features = model.featureCount
        let batchCount = inputs.count / features / rowCount
        let batches = (0..<batchCount).map { batch in
            UnsafeBufferPointer(rebasing: storage[batch * rowCount * features..<(batch + 1) * rowCount * features])
        }
        self.storage = storage
        self.batches = batches
        interfaces = batches.map { batch in
            CAPIBooster.arrayInterface(rows: batch.baseAddress!, rowCount: rowCount, featureCount: features)
                .withUnsafeBufferPointer { strdup($0.baseAddress!)! }
        }
        output = .allocate(capacity: rowCount * model.groupCount)
        output.initialize(repeating: 0)
    }

    deinit {
        for interface in interfaces { free(interface) }
        storage.deallocate()
        output.deallocate()
    }

    /// Predicts every batch with both predictors and throws unless all predictions agree (relative 1e-6); returns
    /// a line saying how closely they do.
    func verify() throws -> String {
        let perRow = model.outputsPerRow
        var identical = 0
        var largest: Float = 0
        for (index, batch) in batches.enumerated() {
            model.predict(rows: batch, rowCount: rowCount, into: output)
            for reusingProxy in [false, true] {
                let theirs = try booster.predict(arrayInterface: interfaces[index], reusingProxy: reusingProxy)
                guard theirs.count == rowCount * perRow else {
                    throw BenchError(
                        "The C API returned \(theirs.count) values for \(rowCount) rows; Strait returns \(rowCount * perRow)."
                    )
                }
                for position in 0..<theirs.count {
                    let (ours, reference) = (output[position], theirs[position])
                    guard agree(ours, reference) else {
                        let row = index * rowCount + position / perRow
                        throw BenchError(
                            "PREDICTIONS DIFFER (\(rowCount)-row batches\(reusingProxy ? ", proxy DMatrix" : "")): input row \(row), output \(position % perRow): Strait \(ours), XGBoost \(reference)."
                        )
                    }
                    if !reusingProxy, ours.bitPattern == reference.bitPattern { identical += 1 }
                    largest = max(largest, abs(ours - reference) / max(abs(reference), .leastNormalMagnitude))
                }
            }
        }
        let total = batches.count * rowCount * perRow
        return "\(total) predictions agree (\(identical) bit-identical, largest relative difference \(largest))"
    }

    /// Times `iterations` calls of each predictor per round (Strait, C API, C API with the proxy), for `rounds`
    /// rounds, after a warm-up.
    func measure(iterations: Int, rounds: Int) throws -> (strait: Latency, capi: Latency, capiProxy: Latency) {
        var strait: [UInt64] = []
        var capi: [UInt64] = []
        var capiProxy: [UInt64] = []
        strait.reserveCapacity(iterations * rounds)
        capi.reserveCapacity(iterations * rounds)
        capiProxy.reserveCapacity(iterations * rounds)
        var discarded: [UInt64] = []
        timeStrait(calls: min(iterations, 500), into: &discarded)
        try timeCAPI(calls: min(iterations, 500), reusingProxy: false, into: &discarded)
        try timeCAPI(calls: min(iterations, 500), reusingProxy: true, into: &discarded)
        for _ in 0..<rounds {
            timeStrait(calls: iterations, into: &strait)
            try timeCAPI(calls: iterations, reusingProxy: false, into: &capi)
            try timeCAPI(calls: iterations, reusingProxy: true, into: &capiProxy)
        }
        return (Latency(strait), Latency(capi), Latency(capiProxy))
    }

    private func timeStrait(calls: Int, into samples: inout [UInt64]) {
        for call in 0..<calls {
            let batch = batches[call % batches.count]
            let start = nanoseconds()
            model.predict(rows: batch, rowCount: rowCount, into: output)
            let end = nanoseconds()
            blackHole(output[0])
            samples.append(end - start)
        }
    }

    private func timeCAPI(calls: Int, reusingProxy: Bool, into samples: inout [UInt64]) throws {
        for call in 0..<calls {
            let interface = interfaces[call % interfaces.count]
            let start = nanoseconds()
            let result = try booster.predict(arrayInterface: interface, reusingProxy: reusingProxy)
            let end = nanoseconds()
            blackHole(result[0])
            samples.append(end - start)
        }
    }
}

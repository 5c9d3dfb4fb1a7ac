import Foundation

/// A `strait serve` started for the benchmark, on free ports, with its own data directory.
final class BenchServer {
    let process: Process
    let dataDirectory: String
    let api: (host: String, port: Int)
    let zonals: [(host: String, port: Int)]

    private init(process: Process, dataDirectory: String, api: (String, Int), zonals: [(String, Int)]) {
        self.process = process
        self.dataDirectory = dataDirectory
        self.api = api
        self.zonals = zonals
    }

    /// Starts `binary serve` with `arguments` after the benchmark's own.
    static func start(binary: String, arguments: [String] = []) throws -> BenchServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strait-bench-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments =
            ["serve", "--data-dir", directory, "--listen", "127.0.0.1:0", "--log-level", "warning"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        Children.started(process) { Self.removeDirectory(directory) }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("Point boto3"), Date() < deadline {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        func address(_ url: Substring) -> (String, Int)? {
            let rest = url.dropFirst("http://".count)
            guard let colon = rest.lastIndex(of: ":"),
                let port = Int(rest[rest.index(after: colon)...].prefix { $0.isNumber })
            else { return nil }
            return (String(rest[..<colon]), port)
        }
        var api: (String, Int)?
        var zonals: [(String, Int)] = []
        for line in text.split(separator: "\n") {
            guard let start = line.range(of: "http://") else { continue }
            let url = line[start.lowerBound...].prefix { $0 != " " }
            if line.contains("API endpoint:") { api = address(url) }
            if line.contains("(zonal,"), let zonal = address(url) { zonals.append(zonal) }
        }
        guard let api, !zonals.isEmpty else {
            Children.stop(process)
            throw BenchError("strait serve did not start:\n\(text)")
        }
        return BenchServer(process: process, dataDirectory: directory, api: api, zonals: zonals)
    }

    /// The address of the endpoint's first instance, from its pid file and environment.
    func instanceAddress(endpoint: String) throws -> (host: String, port: Int) {
        let folder = dataDirectory + "/instances/\(endpoint)"
        for file in try FileManager.default.contentsOfDirectory(atPath: folder) where file.hasSuffix(".pid") {
            let pid =
                try String(contentsOfFile: folder + "/" + file, encoding: .utf8).split(separator: "\n").first ?? ""
            let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
            var host: String?
            var port: Int?
            for entry in environ.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                if text.hasPrefix("STRAIT_BIND_ADDRESS=") {
                    host = String(text.dropFirst("STRAIT_BIND_ADDRESS=".count))
                }
                if text.hasPrefix("SAGEMAKER_BIND_TO_PORT=") {
                    port = Int(text.dropFirst("SAGEMAKER_BIND_TO_PORT=".count))
                }
            }
            if let host, let port { return (host, port) }
        }
        throw BenchError("No instance of \(endpoint) found in \(folder).")
    }

    /// The zonal listener in the same /24 as `host`.
    func zonal(containing host: String) -> (host: String, port: Int)? {
        let prefix = host.split(separator: ".").prefix(3).joined(separator: ".")
        return zonals.first { $0.host.hasPrefix(prefix + ".") }
    }

    /// Stops the server and removes its data directory (the clean-up it was started with).
    func stop() { Children.stop(process) }

    /// Removes the data directory, again if an instance that outlived the server for a moment wrote into it
    /// meanwhile.
    private static func removeDirectory(_ path: String) {
        for _ in 0..<10 {
            try? FileManager.default.removeItem(atPath: path)
            guard FileManager.default.fileExists(atPath: path) else { return }
            usleep(100_000)
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
public import StraitAuth

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where model data comes from and how much of it is allowed.
public struct ModelDataConfiguration: Sendable {
    /// The S3 API endpoint for `s3://` URLs (any S3-compatible server); nil means AWS's regional endpoint.
    public var s3EndpointURL: String?
    /// Credentials that sign S3 requests; nil sends them unsigned.
    public var s3Credentials: Credentials?
    /// The session token of temporary credentials (`AWS_SESSION_TOKEN`), sent as `x-amz-security-token`.
    public var s3SessionToken: String?
    public var region: String
    /// The largest model data, compressed or unpacked.
    public var maximumBytes: Int64

    public static let defaultMaximumBytes: Int64 = 10 << 30

    public init(
        s3EndpointURL: String? = nil,
        s3Credentials: Credentials? = nil,
        s3SessionToken: String? = nil,
        region: String = "us-east-1",
        maximumBytes: Int64 = defaultMaximumBytes
    ) {
        self.s3EndpointURL = s3EndpointURL
        self.s3Credentials = s3Credentials
        self.s3SessionToken = s3SessionToken
        self.region = region
        self.maximumBytes = maximumBytes
    }

    /// From the environment, as the AWS SDKs read it: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
    public static func fromEnvironment(
        _ environment: [String: String],
        region: String,
        endpointURL: String? = nil,
        maximumBytes: Int64 = defaultMaximumBytes
    ) -> ModelDataConfiguration {
        var credentials: Credentials?
        if let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"],
            !key.isEmpty, !secret.isEmpty
        {
            credentials = Credentials(accessKeyID: key, secretAccessKey: secret)
        }
        return ModelDataConfiguration(
            s3EndpointURL: endpointURL ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"],
            s3Credentials: credentials,
            s3SessionToken: credentials == nil
                ? nil : environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            region: region,
            maximumBytes: maximumBytes
        )
    }
}

/// Fetches a model's data once and keeps it in the data directory, shared by every instance of the model:
/// `s3://` (any S3-compatible API, SigV4-signed), `https://`, `http://`, `file://` and absolute paths. A
/// `.tar.gz` is unpacked (safely, see ``ModelArchive``); a directory is copied; any other file is placed in the
/// model directory under its own name. A model directory appears complete or not at all (built aside, renamed).
public actor ModelDataStore {
    public struct Failure: Error, Sendable, Equatable {
        public let reason: String
    }

    private let root: String
    private let configuration: ModelDataConfiguration
    private var inFlight: [String: Task<String, any Error>] = [:]

    public init(dataDirectory: String, configuration: ModelDataConfiguration) {
        self.root = (dataDirectory as NSString).appendingPathComponent("models")
        self.configuration = configuration
        // Fetches cut short by a crash leave their staging directories behind.
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: root)) ?? [] where name.hasPrefix(".staging-") {
            try? manager.removeItem(atPath: (root as NSString).appendingPathComponent(name))
        }
    }

    /// The model directory for `url`, fetched now unless an earlier call already did. Local sources are keyed
    /// by their modification time too, so a re-saved file is picked up by the next deployment.
    public func directory(for url: String) async throws(Failure) -> String {
        let key = SigV4.hexSHA256(Array((url + "\n" + Self.localVersion(of: url)).utf8)).prefix(24)
        let destination = (root as NSString).appendingPathComponent(String(key))
        if FileManager.default.fileExists(atPath: destination) { return destination }
        let task =
            inFlight[destination]
            ?? Task { [root, configuration] in
                try await Self.fetch(url, into: destination, root: root, configuration: configuration)
            }
        inFlight[destination] = task
        defer { if inFlight[destination] == task { inFlight[destination] = nil } }
        do {
            return try await task.value
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: "Failed to download model data from \(url): \(error).")
        }
    }

    private static func localVersion(of url: String) -> String {
        guard let path = localPath(url),
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let modified = attributes[.modificationDate] as? Date
        else { return "" }
        return "\(modified.timeIntervalSince1970) \(attributes[.size] ?? 0)"
    }

    static func localPath(_ url: String) -> String? {
        if url.hasPrefix("/") { return url }
        guard url.hasPrefix("file://") else { return nil }
        // file:///path or file://localhost/path; any other host is not this machine's file.
        let rest = url.dropFirst("file://".count)
        if rest.hasPrefix("/") { return URL(string: url)?.path ?? String(rest) }
        if rest.hasPrefix("localhost/") { return URL(string: url)?.path ?? String(rest.dropFirst("localhost".count)) }
        return ""
    }

    private static func fetch(
        _ url: String,
        into destination: String,
        root: String,
        configuration: ModelDataConfiguration
    ) async throws -> String {
        let manager = FileManager.default
        try manager.createDirectory(atPath: root, withIntermediateDirectories: true)
        let staging = (root as NSString).appendingPathComponent(".staging-\(UInt64.random(in: 0...UInt64.max))")
        try manager.createDirectory(atPath: staging, withIntermediateDirectories: false)
        defer { try? manager.removeItem(atPath: staging) }
        let unpacked = (staging as NSString).appendingPathComponent("model")

        let source: String
        var downloaded = false
        if let path = localPath(url) {
            guard !path.isEmpty else {
                throw Failure(reason: "The model data URL \(url) names a host: file:// URLs must be file:///path.")
            }
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw Failure(reason: "Could not find model data at \(url): \(path) does not exist.")
            }
            if isDirectory.boolValue {
                try await offThePool { try manager.copyItem(atPath: path, toPath: unpacked) }
                return try publish(unpacked, as: destination)
            }
            source = path
        } else {
            source = (staging as NSString).appendingPathComponent("download")
            try await download(url, to: source, configuration: configuration)
            downloaded = true
        }
        let size = (try? manager.attributesOfItem(atPath: source)[.size] as? Int64) ?? 0
        guard size <= configuration.maximumBytes else {
            throw Failure(
                reason: "The model data at \(url) is \(size) bytes, over the limit of \(configuration.maximumBytes)."
            )
        }
        try manager.createDirectory(atPath: unpacked, withIntermediateDirectories: false)
        if ModelArchive.isGzip(source) {
            do {
                // Unpacking is long, blocking work: on a thread of its own, not the concurrency pool's.
                try await offThePool { () throws(ModelArchive.Failure) in
                    try ModelArchive(maximumBytes: configuration.maximumBytes).extract(archive: source, into: unpacked)
                }
            } catch let error as ModelArchive.Failure {
                throw Failure(
                    reason:
                        "Failed to extract model data archive from URL \"\(url)\". Please ensure that the object located at the URL is a valid tar.gz archive: \(error.message)"
                )
            }
        } else {
            let last = URL(string: url)?.lastPathComponent ?? ""
            let name = last.isEmpty || last == "/" || last == "." || last == ".." || last.contains("/") ? "model" : last
            let target = (unpacked as NSString).appendingPathComponent(name)
            if downloaded {
                try manager.moveItem(atPath: source, toPath: target)
            } else {
                try await offThePool { try manager.copyItem(atPath: source, toPath: target) }
            }
        }
        return try publish(unpacked, as: destination)
    }

    /// Runs blocking file work on a Dispatch thread and waits for it without holding a concurrency-pool thread.
    private static func offThePool<Failure: Error>(_ work: @escaping @Sendable () throws(Failure) -> Void) async throws
    {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async {
                do {
                    try work()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private static func publish(_ unpacked: String, as destination: String) throws -> String {
        guard rename(unpacked, destination) == 0 || FileManager.default.fileExists(atPath: destination) else {
            throw Failure(reason: "Cannot store the model data in \(destination).")
        }
        return destination
    }

    /// GETs `url` (s3, https, http) into `path`.
    private static func download(_ url: String, to path: String, configuration: ModelDataConfiguration) async throws {
        var request: URLRequest
        if url.hasPrefix("s3://") {
            let rest = url.dropFirst("s3://".count)
            guard let slash = rest.firstIndex(of: "/"), slash > rest.startIndex,
                rest.index(after: slash) < rest.endIndex
            else { throw Failure(reason: "The model data URL \(url) names no object (s3://bucket/key).") }
            let bucket = String(rest[..<slash])
            let key = String(rest[rest.index(after: slash)...])
            let endpoint = configuration.s3EndpointURL ?? "https://s3.\(configuration.region).amazonaws.com"
            let encodedKey = key.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.addingPercentEncoding(withAllowedCharacters: .s3Unreserved) ?? String($0) }
                .joined(separator: "/")
            let objectPath = "/\(bucket)/\(encodedKey)"
            guard let endpointURL = URL(string: endpoint), let host = endpointURL.host,
                let requestURL = URL(string: endpoint.trimmingSuffix("/") + objectPath)
            else { throw Failure(reason: "The S3 endpoint URL \(endpoint) is not a URL.") }
            request = URLRequest(url: requestURL)
            let hostHeader = endpointURL.port.map { "\(host):\($0)" } ?? host
            request.setValue(hostHeader, forHTTPHeaderField: "host")
            var signedHeaders: [(name: String, value: String)] = [("host", hostHeader)]
            if let token = configuration.s3SessionToken {
                signedHeaders.append(("x-amz-security-token", token))
                request.setValue(token, forHTTPHeaderField: "x-amz-security-token")
            }
            if let credentials = configuration.s3Credentials {
                let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: "s3")
                let basePath = endpointURL.path.trimmingSuffix("/")
                for (name, value) in signer.sign(
                    method: "GET",
                    path: basePath + objectPath,
                    headers: signedHeaders,
                    body: []
                ) {
                    request.setValue(value, forHTTPHeaderField: name)
                }
            }
        } else if url.hasPrefix("https://") || url.hasPrefix("http://"), let parsed = URL(string: url) {
            request = URLRequest(url: parsed)
        } else {
            throw Failure(reason: "The model data URL \(url) is not s3://, https://, http:// or file://.")
        }
        request.timeoutInterval = 300
        let (temporary, response) = try await URLSession.shared.download(for: request)
        defer { try? FileManager.default.removeItem(at: temporary) }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            switch status {
            case 404: throw Failure(reason: "Could not find model data at \(url) (HTTP 404).")
            case 403:
                throw Failure(
                    reason:
                        "Failed to download model data from \(url): access denied (HTTP 403). Check the credentials Strait signs S3 requests with."
                )
            default: throw Failure(reason: "Failed to download model data from \(url): HTTP status \(status).")
            }
        }
        try FileManager.default.moveItem(at: temporary, to: URL(fileURLWithPath: path))
    }
}

extension CharacterSet {
    /// RFC 3986 unreserved characters: what S3's canonical URI leaves unencoded.
    fileprivate static let s3Unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

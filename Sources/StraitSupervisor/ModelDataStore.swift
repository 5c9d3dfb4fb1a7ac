import Foundation
public import StraitAuth
import Synchronization

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

/// Where a model's data is and how it is packed: ModelDataUrl, or ModelDataSource.S3DataSource.
public struct ModelDataSource: Sendable, Hashable {
    public enum Compression: Sendable, Hashable {
        /// ModelDataUrl: a `.tar.gz` is recognised by its bytes.
        case detect
        /// CompressionType Gzip: the object must be a tar.gz.
        case gzip
        /// CompressionType None: the object is a file of the model, never unpacked.
        case none
    }

    public var url: String
    /// S3DataType S3Prefix: every object under the URL (a prefix ending in `/`).
    public var isPrefix: Bool
    public var compression: Compression

    public init(url: String, isPrefix: Bool = false, compression: Compression = .detect) {
        self.url = url
        self.isPrefix = isPrefix
        self.compression = compression
    }
}

/// Fetches a model's data once and keeps it in the data directory, shared by every instance of the model:
/// `s3://` (any S3-compatible API, SigV4-signed; one object or, for S3Prefix, every object under a prefix),
/// `https://`, `http://`, `file://` and absolute paths. A `.tar.gz` is unpacked (safely, see ``ModelArchive``); a
/// directory is copied; any other file is placed in the model directory under its own name. A model directory
/// appears complete or not at all (built aside, renamed).
public actor ModelDataStore {
    public struct Failure: Error, Sendable, Equatable {
        public let reason: String
    }

    /// The most objects an S3Prefix source may hold.
    static let maximumObjects = 10_000

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

    /// The model directory for `source`, fetched now unless an earlier call already did; a fetch that takes longer
    /// than `timeout` (ModelDataDownloadTimeoutInSeconds) fails. Local sources are keyed by their modification time
    /// too, so a re-saved file is picked up by the next deployment.
    public func directory(for source: ModelDataSource, timeout: Duration?) async throws(Failure) -> String {
        let url = source.url
        let identity = "\(url)\n\(source.isPrefix)\n\(source.compression)\n\(Self.localVersion(of: url))"
        let key = SigV4.hexSHA256(Array(identity.utf8)).prefix(24)
        let destination = (root as NSString).appendingPathComponent(String(key))
        if FileManager.default.fileExists(atPath: destination) { return destination }
        let task =
            inFlight[destination]
            ?? Task { [root, configuration] in
                try await Self.fetch(source, into: destination, root: root, configuration: configuration)
            }
        inFlight[destination] = task
        defer { if inFlight[destination] == task { inFlight[destination] = nil } }
        do {
            guard let timeout else { return try await task.value }
            // Race the fetch against the timeout without waiting for the loser: the fetch may be shared with
            // another deployment (which may allow longer), so it goes on and fills the cache.
            let timedOut = Failure(
                reason:
                    "The model data download from \(url) did not finish within \(timeout.components.seconds) seconds (ModelDataDownloadTimeoutInSeconds)."
            )
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
                let once = ResumeFirst(continuation)
                let waiter = Task {
                    do { once.resume(with: .success(try await task.value)) } catch {
                        once.resume(with: .failure(error))
                    }
                }
                Task {
                    try? await Task.sleep(for: timeout)
                    once.resume(with: .failure(timedOut))
                    waiter.cancel()
                }
            }
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
        _ modelData: ModelDataSource,
        into destination: String,
        root: String,
        configuration: ModelDataConfiguration
    ) async throws -> String {
        let url = modelData.url
        let manager = FileManager.default
        try manager.createDirectory(atPath: root, withIntermediateDirectories: true)
        let staging = (root as NSString).appendingPathComponent(".staging-\(UInt64.random(in: 0...UInt64.max))")
        try manager.createDirectory(atPath: staging, withIntermediateDirectories: false)
        defer { try? manager.removeItem(atPath: staging) }
        let unpacked = (staging as NSString).appendingPathComponent("model")

        if modelData.isPrefix, modelData.compression == .gzip {
            throw Failure(reason: "CompressionType Gzip cannot be used with S3DataType S3Prefix (\(url)).")
        }
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
        } else if modelData.isPrefix {
            try manager.createDirectory(atPath: unpacked, withIntermediateDirectories: false)
            try await downloadPrefix(url, into: unpacked, configuration: configuration)
            return try publish(unpacked, as: destination)
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
        let unpack: Bool
        switch modelData.compression {
        case .detect: unpack = ModelArchive.isGzip(source)
        case .none: unpack = false
        case .gzip:
            guard ModelArchive.isGzip(source) else {
                throw Failure(
                    reason:
                        "Failed to extract model data archive from URL \"\(url)\". Please ensure that the object located at the URL is a valid tar.gz archive: it is not gzip data."
                )
            }
            unpack = true
        }
        if unpack {
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

    /// `s3://bucket/key` as its parts.
    static func s3Location(_ url: String) -> (bucket: String, key: String)? {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst("s3://".count)
        guard let slash = rest.firstIndex(of: "/"), slash > rest.startIndex else { return nil }
        return (String(rest[..<slash]), String(rest[rest.index(after: slash)...]))
    }

    /// A signed S3 GET of `/bucket/key` (the key URI-encoded once, as S3 wants it) with an optional query.
    private static func s3Request(
        bucket: String,
        key: String,
        query: [(String, String)] = [],
        configuration: ModelDataConfiguration
    ) throws -> URLRequest {
        let endpoint = configuration.s3EndpointURL ?? "https://s3.\(configuration.region).amazonaws.com"
        let encodedKey = key.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.addingPercentEncoding(withAllowedCharacters: .s3Unreserved) ?? String($0) }
            .joined(separator: "/")
        let objectPath = key.isEmpty ? "/\(bucket)" : "/\(bucket)/\(encodedKey)"
        let queryString = query.sorted { $0.0 < $1.0 }.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .s3Unreserved) ?? value)"
        }.joined(separator: "&")
        guard let endpointURL = URL(string: endpoint), let host = endpointURL.host,
            let requestURL = URL(
                string: endpoint.trimmingSuffix("/") + objectPath + (queryString.isEmpty ? "" : "?" + queryString)
            )
        else { throw Failure(reason: "The S3 endpoint URL \(endpoint) is not a URL.") }
        var request = URLRequest(url: requestURL)
        let hostHeader = endpointURL.port.map { "\(host):\($0)" } ?? host
        request.setValue(hostHeader, forHTTPHeaderField: "host")
        var signedHeaders: [(name: String, value: String)] = [("host", hostHeader)]
        if let token = configuration.s3SessionToken {
            signedHeaders.append(("x-amz-security-token", token))
            request.setValue(token, forHTTPHeaderField: "x-amz-security-token")
        }
        if let credentials = configuration.s3Credentials {
            let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: "s3")
            for (name, value) in signer.sign(
                method: "GET",
                path: endpointURL.path.trimmingSuffix("/") + objectPath,
                query: queryString,
                headers: signedHeaders,
                body: []
            ) {
                request.setValue(value, forHTTPHeaderField: name)
            }
        }
        return request
    }

    /// GETs `url` (s3, https, http) into `path`, at most `limit` bytes (default: the model data limit).
    private static func download(
        _ url: String,
        to path: String,
        configuration: ModelDataConfiguration,
        limit: Int64? = nil
    ) async throws {
        var request: URLRequest
        if url.hasPrefix("s3://") {
            guard let (bucket, key) = s3Location(url), !key.isEmpty else {
                throw Failure(reason: "The model data URL \(url) names no object (s3://bucket/key).")
            }
            request = try s3Request(bucket: bucket, key: key, configuration: configuration)
        } else if url.hasPrefix("https://") || url.hasPrefix("http://"), let parsed = URL(string: url) {
            request = URLRequest(url: parsed)
        } else {
            throw Failure(reason: "The model data URL \(url) is not s3://, https://, http:// or file://.")
        }
        request.timeoutInterval = 300
        // Streamed into place with the size bound applied as bytes arrive.
        let bound = limit ?? configuration.maximumBytes
        switch try await BoundedDownload.run(request, to: path, maximumBytes: bound) {
        case .completed(let status):
            do { try check(status: status, url: url) } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw error
            }
        case .tooLarge:
            try? FileManager.default.removeItem(atPath: path)
            throw Failure(reason: "The model data at \(url) is over the limit of \(bound) bytes.")
        case .failed(let reason):
            try? FileManager.default.removeItem(atPath: path)
            throw Failure(reason: "Failed to download model data from \(url): \(reason)")
        }
    }

    private static func check(_ response: URLResponse, url: String) throws {
        try check(status: (response as? HTTPURLResponse)?.statusCode ?? 0, url: url)
    }

    private static func check(status: Int, url: String) throws {
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
    }

    /// S3Prefix: lists the objects under `url` (ListObjectsV2, page by page) and downloads each to its path
    /// relative to the prefix. A key that is not a safe relative path is refused.
    private static func downloadPrefix(
        _ url: String,
        into directory: String,
        configuration: ModelDataConfiguration
    ) async throws {
        guard let (bucket, prefix) = s3Location(url) else {
            throw Failure(reason: "S3DataType S3Prefix needs an s3:// URI, not \(url).")
        }
        guard prefix.isEmpty || prefix.hasSuffix("/") else {
            throw Failure(reason: "An S3Prefix S3Uri must end with '/': \(url).")
        }
        var keys: [String] = []
        var token: String?
        var seenTokens: Set<String> = []
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let request = try s3Request(bucket: bucket, key: "", query: query, configuration: configuration)
            let (data, response) = try await URLSession.shared.data(for: request)
            try check(response, url: url)
            let listing = ListBucketResult(xml: String(decoding: data, as: UTF8.self))
            keys += listing.keys
            token = listing.isTruncated ? listing.nextToken : nil
            if listing.isTruncated {
                guard let next = token, seenTokens.insert(next).inserted, !listing.keys.isEmpty else {
                    throw Failure(
                        reason:
                            "Listing the model data at \(url) did not page properly (truncated without a new token)."
                    )
                }
            }
            guard keys.count <= maximumObjects else {
                throw Failure(reason: "The model data at \(url) has more than \(maximumObjects) objects.")
            }
        } while token != nil
        let objects = keys.filter { !$0.hasSuffix("/") }  // folder markers
        guard !objects.isEmpty else {
            throw Failure(reason: "Could not find model data at \(url): no object has that prefix.")
        }
        var total: Int64 = 0
        for key in objects {
            let relative = String(key.dropFirst(prefix.count))
            let components = relative.split(separator: "/", omittingEmptySubsequences: false)
            guard !relative.isEmpty, !relative.hasPrefix("/"), !relative.contains("\0"),
                components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
            else {
                throw Failure(reason: "The object s3://\(bucket)/\(key) is not a safe path inside the model directory.")
            }
            let target = (directory as NSString).appendingPathComponent(relative)
            try FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try await download(
                "s3://\(bucket)/\(key)",
                to: target,
                configuration: configuration,
                limit: configuration.maximumBytes - total
            )
            total += (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? Int64) ?? 0
            guard total <= configuration.maximumBytes else {
                throw Failure(
                    reason: "The model data at \(url) is over the limit of \(configuration.maximumBytes) bytes."
                )
            }
        }
    }
}

/// Resumes a continuation with the first result only.
private final class ResumeFirst<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, any Error>?>

    init(_ continuation: CheckedContinuation<Value, any Error>) { self.continuation = Mutex(continuation) }

    func resume(with result: Result<Value, any Error>) {
        continuation.withLock { stored in
            stored?.resume(with: result)
            stored = nil
        }
    }
}

/// The parts of an S3 ListObjectsV2 answer that listing needs.
struct ListBucketResult {
    var keys: [String] = []
    var isTruncated = false
    var nextToken: String?

    init(xml: String) {
        keys = Self.values(of: "Key", in: xml)
        isTruncated = Self.values(of: "IsTruncated", in: xml).first == "true"
        nextToken = Self.values(of: "NextContinuationToken", in: xml).first
    }

    /// The text of every `<name>…</name>`, with XML's entities decoded.
    static func values(of name: String, in xml: String) -> [String] {
        var result: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>") {
            guard let close = rest[open.upperBound...].range(of: "</\(name)>") else { break }
            result.append(decodeEntities(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        return result
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semicolon) <= 10 else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
                continue
            }
            let entity = rest[rest.index(after: amp)..<semicolon]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number =
                    entity.hasPrefix("#x")
                    ? UInt32(entity.dropFirst(2), radix: 16)
                    : entity.hasPrefix("#") ? UInt32(entity.dropFirst(), radix: 10) : nil
                if let number, let scalar = UnicodeScalar(number) {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += "&" + entity + ";"
                }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return out + rest
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

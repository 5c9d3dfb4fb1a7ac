import Foundation
import NIOCore
public import StraitCore
import StraitDataPlane

/// Everything `strait serve` can be told, with the embedded defaults.
public struct ServerConfiguration: Sendable {
    public static let defaultListenHost = "127.0.0.1"
    public static let defaultListenPort = 8400
    public static let defaultRegion = "us-east-1"
    public static let defaultAccountID = "123456789012"
    public static let defaultBusyPollMicroseconds = 100
    public static let maximumBusyPollMicroseconds = Int(DataPlane.longestBusyPoll.nanoseconds / 1000)

    /// Where the store, credentials and instance files live: `$STRAIT_DATA_DIR`, else `~/.strait`.
    public var dataDirectory: String
    public var listenHost: String
    /// 0 picks a free port.
    public var listenPort: Int
    public var region: String
    public var accountID: String
    public var zones: ZoneLayout
    /// SIGTERM-to-SIGKILL bound for instances.
    public var instanceStopGrace: Duration
    /// How long new instances have to answer `/ping` when the variant sets no ContainerStartupHealthCheckTimeoutInSeconds.
    public var startupHealthCheckTimeout: Duration
    /// The executable that serves built-in images as `strait worker`; the running binary by default.
    public var workerExecutable: String
    /// Instances of one instance type over all endpoints (SageMaker's per-type endpoint-usage quota).
    public var maxInstancesPerType: Int
    /// How long an instance has to answer an invocation: 60 s, as SageMaker.
    public var invocationTimeout: Duration
    /// The S3 API endpoint for `s3://` model data (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS's own).
    public var s3EndpointURL: String?
    /// The largest model data accepted, compressed or unpacked.
    public var maxModelDataBytes: Int64
    /// Image names to executables or built-in images (the configuration file's `images`).
    public var images: [String: String]
    /// Calls in flight at which an instance counts as full (a zonal endpoint then spills to other zones).
    public var instanceCapacity: Int
    /// `--docker-host`: the Docker Engine API socket for container images (else `DOCKER_HOST`, else
    /// `/var/run/docker.sock` when present).
    public var dockerHost: String?
    /// `--dns-listen HOST:PORT`: where Strait's private DNS answers (UDP and TCP); nil leaves it off.
    public var dnsListen: (host: String, port: Int)?
    /// `--busy-poll-us`: how long an event loop polls for the next event of a quick exchange before it sleeps
    /// (the data plane's `BusyPoll`); zero turns it off.
    public var busyPoll: Duration

    public init(
        dataDirectory: String = ServerConfiguration.defaultDataDirectory(),
        listenHost: String = ServerConfiguration.defaultListenHost,
        listenPort: Int = ServerConfiguration.defaultListenPort,
        region: String = ServerConfiguration.defaultRegion,
        accountID: String = ServerConfiguration.defaultAccountID,
        zones: ZoneLayout? = nil,
        instanceStopGrace: Duration = .seconds(30),
        startupHealthCheckTimeout: Duration = .seconds(600),
        workerExecutable: String = ServerConfiguration.currentExecutable(),
        maxInstancesPerType: Int = 20,
        invocationTimeout: Duration = .seconds(60),
        s3EndpointURL: String? = nil,
        maxModelDataBytes: Int64 = 10 << 30,
        images: [String: String] = [:],
        instanceCapacity: Int = 64,
        dockerHost: String? = nil,
        dnsListen: (host: String, port: Int)? = nil,
        busyPoll: Duration = .microseconds(ServerConfiguration.defaultBusyPollMicroseconds)
    ) {
        self.busyPoll = busyPoll
        self.dnsListen = dnsListen
        self.dockerHost = dockerHost
        self.instanceCapacity = instanceCapacity
        self.images = images
        self.s3EndpointURL = s3EndpointURL
        self.maxModelDataBytes = maxModelDataBytes
        self.invocationTimeout = invocationTimeout
        self.maxInstancesPerType = maxInstancesPerType
        // Absolute and normalised: it is bind-mounted into containers and labels them as this server's.
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.region = region
        self.accountID = accountID
        self.zones = zones ?? ZoneLayout.loopbackDefault(region: region)
        self.instanceStopGrace = instanceStopGrace
        self.startupHealthCheckTimeout = startupHealthCheckTimeout
        self.workerExecutable = workerExecutable
    }

    public static func defaultDataDirectory() -> String {
        if let configured = ProcessInfo.processInfo.environment["STRAIT_DATA_DIR"], !configured.isEmpty {
            return configured
        }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".strait")
    }

    /// The absolute path of the running executable.
    public static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? "strait"
    }

    /// Checks the values a user can get wrong, with a message saying how to fix each.
    public func validate() throws(ConfigurationError) {
        guard accountID.count == 12, accountID.allSatisfy(\.isASCII), accountID.allSatisfy(\.isNumber) else {
            throw ConfigurationError("--account-id must be 12 digits, not '\(accountID)'.")
        }
        guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
            throw ConfigurationError("--region must look like us-east-1, not '\(region)'.")
        }
        guard maxInstancesPerType >= 1 else {
            throw ConfigurationError("--max-instances-per-type must be at least 1, not \(maxInstancesPerType).")
        }
        guard (0...65535).contains(listenPort) else {
            throw ConfigurationError("The --listen port must be between 0 and 65535, not \(listenPort).")
        }
    }
}

/// A configuration the server cannot start with.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Parses `HOST:PORT` (`[::1]:PORT` for IPv6).
public func parseListenAddress(_ text: String) -> (host: String, port: Int)? {
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()) else { return nil }
        return (host, port)
    }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
    let host = String(text[..<colon])
    return host.isEmpty ? nil : (host, port)
}

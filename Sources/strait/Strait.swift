import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StraitCore
import StraitRuntimes
import StraitServer
import UnixSignals

@main
struct Strait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strait",
        abstract: "A self-hosted, SageMaker-compatible platform for real-time model inference.",
        subcommands: [Serve.self, Worker.self, Endpoints.self, Instances.self, Logs.self]
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the SageMaker API and the instances of every endpoint."
    )

    @Option(
        help:
            "Where the store, the credentials file and instance files live (default: $STRAIT_DATA_DIR, else ~/.strait)."
    )
    var dataDir: String = ServerConfiguration.defaultDataDirectory()

    @Option(help: "The regional API endpoint, HOST:PORT; port 0 picks a free one.")
    var listen: String = "\(ServerConfiguration.defaultListenHost):\(ServerConfiguration.defaultListenPort)"

    @Option(help: "A JSON configuration file defining the zones and their subnets (see the README).")
    var config: String?

    @Option(help: "The AWS region Strait answers as.")
    var region: String = ServerConfiguration.defaultRegion

    @Option(help: "The 12-digit account id in ARNs.")
    var accountId: String = ServerConfiguration.defaultAccountID

    @Option(help: "Seconds an instance has between SIGTERM and SIGKILL.")
    var instanceStopGrace: Int = 30

    @Option(
        help:
            "Seconds new instances have to answer /ping when a variant sets no ContainerStartupHealthCheckTimeoutInSeconds."
    )
    var startupHealthCheckTimeout: Int = 600

    @Option(help: "Instances of one instance type over all endpoints (SageMaker's endpoint-usage quota).")
    var maxInstancesPerType: Int = 20

    @Option(help: "Seconds an instance has to answer an invocation (SageMaker: 60).")
    var invocationTimeout: Int = 60

    @Option(
        help:
            "The S3 API endpoint for s3:// model data, e.g. http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS). Requests are signed with $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY when set."
    )
    var s3EndpointUrl: String?

    @Option(help: "The largest model data, in MiB, compressed or unpacked.")
    var maxModelDataMib: Int = 10 * 1024

    @Option(
        help:
            "Calls in flight at which an instance counts as full: a zonal endpoint then sends calls to other zones' instances with room."
    )
    var instanceCapacity: Int = 64

    @Option(
        help:
            "The Docker Engine API socket (dockerd or podman system service) that runs container images, unix:///path (default: $DOCKER_HOST, else /var/run/docker.sock when present)."
    )
    var dockerHost: String?

    @Option(
        help:
            "Answer DNS (UDP and TCP) on HOST:PORT for interface endpoints' names and, with private DNS, runtime.sagemaker.<region>.amazonaws.com, by the asking client's zone (default: off)."
    )
    var dnsListen: String?

    @Option(
        help:
            "Microseconds an event loop polls for the next event of a quick exchange before it sleeps (an instance's answer, a caller's next request), trading CPU for latency; 0 turns polling off."
    )
    var busyPollUs: Int = ServerConfiguration.defaultBusyPollMicroseconds

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let (host, port) = parseListenAddress(listen) else {
            throw ValidationError("--listen must be HOST:PORT, for example 127.0.0.1:8400; got '\(listen)'.")
        }
        guard maxModelDataMib > 0, maxModelDataMib <= Int(Int64.max >> 21) else {
            throw ValidationError("--max-model-data-mib must be between 1 and \(Int64.max >> 21).")
        }
        guard (1...3600).contains(startupHealthCheckTimeout) else {
            throw ValidationError("--startup-health-check-timeout must be between 1 and 3600 seconds.")
        }
        guard instanceCapacity >= 1 else { throw ValidationError("--instance-capacity must be 1 or more.") }
        guard instanceStopGrace >= 0 else { throw ValidationError("--instance-stop-grace must be 0 or more.") }
        guard (1...3600).contains(invocationTimeout) else {
            throw ValidationError("--invocation-timeout must be between 1 and 3600 seconds.")
        }
        guard (0...ServerConfiguration.maximumBusyPollMicroseconds).contains(busyPollUs) else {
            throw ValidationError(
                "--busy-poll-us must be between 0 and \(ServerConfiguration.maximumBusyPollMicroseconds)."
            )
        }
        var dns: (host: String, port: Int)?
        if let dnsListen {
            guard let parsed = parseListenAddress(dnsListen), (0...65535).contains(parsed.port) else {
                throw ValidationError("--dns-listen must be HOST:PORT, for example 127.0.0.1:5353; got '\(dnsListen)'.")
            }
            dns = parsed
        }
        var logger = Logger(label: "strait")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var zones: ZoneLayout?
        var images: [String: String] = [:]
        if let config {
            let path = (config as NSString).expandingTildeInPath
            do {
                zones = try ConfigurationFile.zones(path: path)
                images = try ConfigurationFile.images(path: path)
            } catch {
                throw ValidationError(error.description)
            }
        }
        let configuration = ServerConfiguration(
            dataDirectory: (dataDir as NSString).expandingTildeInPath,
            listenHost: host,
            listenPort: port,
            region: region,
            accountID: accountId,
            zones: zones,
            instanceStopGrace: .seconds(instanceStopGrace),
            startupHealthCheckTimeout: .seconds(startupHealthCheckTimeout),
            maxInstancesPerType: maxInstancesPerType,
            invocationTimeout: .seconds(invocationTimeout),
            s3EndpointURL: s3EndpointUrl,
            maxModelDataBytes: Int64(maxModelDataMib) << 20,
            images: images,
            instanceCapacity: instanceCapacity,
            dockerHost: dockerHost,
            dnsListen: dns,
            busyPoll: .microseconds(busyPollUs)
        )
        let application: Application
        do { application = try buildApplication(configuration, logger: logger) } catch {
            throw ValidationError("\(error)")
        }
        do { try await application.bind() } catch {
            throw ValidationError("Cannot listen on \(listen) or on --dns-listen: \(error)")
        }
        FileHandle.standardOutput.write(Data((application.banner + "\n").utf8))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: application.services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        try await application.group.shutdownGracefully()
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a built-in model runtime through the SageMaker container contract.",
        discussion: """
            Started by Strait's process backend as `strait worker --runtime NAME serve`. Listens on \
            $STRAIT_BIND_ADDRESS (default 0.0.0.0) and $SAGEMAKER_BIND_TO_PORT (default 8080); the model is in \
            $SM_MODEL_DIR (default /opt/ml/model).
            """
    )

    @Option(help: "The runtime: echo or xgboost.")
    var runtime: String = "echo"

    @Argument(help: "The container command: serve.")
    var command: String = "serve"

    func run() async throws {
        guard command == "serve" else { throw ValidationError("The only worker command is 'serve', not '\(command)'.") }
        let environment = ProcessInfo.processInfo.environment
        let portText = environment["SAGEMAKER_BIND_TO_PORT"] ?? "8080"
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ValidationError("SAGEMAKER_BIND_TO_PORT must be a port number, not '\(portText)'.")
        }
        let host = environment["STRAIT_BIND_ADDRESS"] ?? "0.0.0.0"
        let modelRuntime: any ModelRuntime
        switch runtime {
        case EchoRuntime.name: modelRuntime = EchoRuntime()
        case XGBoostRuntime.name:
            let modelDirectory = environment["SM_MODEL_DIR"] ?? "/opt/ml/model"
            do { modelRuntime = try XGBoostRuntime(modelDirectory: modelDirectory, environment: environment) } catch {
                // The container exits when its model does not load; the message ends up in the instance log.
                FileHandle.standardError.write(Data("Unable to load model: \(error)\n".utf8))
                throw ExitCode(1)
            }
        default:
            throw ValidationError(
                "Unknown runtime '\(runtime)'. Available: \(EchoRuntime.name), \(XGBoostRuntime.name)."
            )
        }
        // One loop per core: a long prediction on one loop leaves /ping (and other calls) to the others.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let server = WorkerServer(host: host, port: port, runtime: modelRuntime)
        // The Unix socket first: once /ping answers on TCP, both listen.
        var channels: [any Channel] = []
        if let socket = environment["STRAIT_UNIX_SOCKET"], !socket.isEmpty {
            channels.append(try await server.start(group: group, unixSocket: socket))
        }
        channels.append(try await server.start(group: group))
        var logger = Logger(label: "strait-worker")
        logger.logLevel = .notice
        let socketNote = environment["STRAIT_UNIX_SOCKET"].map { $0.isEmpty ? "" : " and \($0)" } ?? ""
        FileHandle.standardOutput.write(
            Data("strait worker (\(runtime)) listening on \(host):\(port)\(socketNote)\n".utf8)
        )
        try await ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: channels.map { .init(service: ChannelService(channel: $0)) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        ).run()
        try await group.shutdownGracefully()
    }
}

/// Keeps a listening channel open until graceful shutdown (or until it closes).
struct ChannelService: Service {
    let channel: any Channel

    func run() async throws {
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

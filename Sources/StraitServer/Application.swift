import Foundation
public import Logging
import NIOCore
public import NIOPosix
public import ServiceLifecycle
import StraitAuth
import StraitControlPlane
import StraitCore
import StraitDataPlane
import StraitStore
import StraitSupervisor

/// A built Strait server: its services in start order, and what to tell the user once it listens.
public struct Application: Sendable {
    public let configuration: ServerConfiguration
    /// In dependency order; ServiceGroup stops them in reverse (listener first, instances last).
    public let services: [any Service]
    /// The regional endpoint: the SageMaker API and InvokeEndpoint across all zones.
    public let apiServer: HTTPServer
    /// One runtime endpoint per zone, on the first host address of the zone's subnet and the regional port.
    public let zonalServers: [HTTPServer]
    public let credentialsPath: String
    public let credentialsCreated: Bool
    public let group: MultiThreadedEventLoopGroup
    /// Held while the application lives: one server per data directory.
    public let lock: DataDirectoryLock

    /// The regional API endpoint URL (valid after the listener is bound).
    public var endpointURL: String { apiServer.url }

    /// Each zone's runtime endpoint: the first host address of its first subnet, on the regional port.
    public var zonalURLs: [(zone: String, url: String)] {
        configuration.zones.zones.compactMap { zone in
            zone.subnets.first?.cidr.address(at: 1).map {
                (zone.name, "http://\($0):\(apiServer.port ?? configuration.listenPort)")
            }
        }
    }

    /// Binds the regional listener, then each zonal one on the same port.
    public func bind() async throws {
        try await apiServer.bind()
        for server in zonalServers {
            try await server.bind(port: apiServer.port)
        }
        // Where `strait endpoints|instances|logs` find this server.
        try? Data((endpointURL + "\n").utf8).write(to: URL(fileURLWithPath: apiEndpointFile))
    }

    /// `<data-dir>/api-endpoint`: the regional API URL of the server that runs on the data directory.
    public var apiEndpointFile: String {
        (configuration.dataDirectory as NSString).appendingPathComponent("api-endpoint")
    }

    /// What `strait serve` prints when it is ready.
    public var banner: String {
        """
        Strait is ready.
          API endpoint:   \(endpointURL)
          Region:         \(configuration.region)
          Account:        \(configuration.accountID)
          Data directory: \(configuration.dataDirectory)
          Credentials:    \(credentialsPath) (profile default\(credentialsCreated ? ", created now" : ""))
          Zones:          \(configuration.zones.zones.map { "\($0.name) \($0.subnets.map { "\($0.id) \($0.cidr)" }.joined(separator: ", "))" }.joined(separator: "; "))
          Runtime:        \(endpointURL) (regional)\(zonalURLs.map { "\n                  \($0.url) (zonal, \($0.zone))" }.joined())

        Point boto3 and the AWS CLI at it:
          export AWS_SHARED_CREDENTIALS_FILE=\(credentialsPath)
          export AWS_DEFAULT_REGION=\(configuration.region)
          export AWS_ENDPOINT_URL_SAGEMAKER=\(endpointURL)
          export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=\(zonalURLs.first?.url ?? endpointURL)
        """
    }
}

/// The composition root: builds the whole server from a configuration. Used by `strait serve` and by tests.
///
/// Creates the data directory, opens (or creates) the store and the credentials file, and wires the control plane,
/// the endpoint controller and the process backend. Nothing listens until ``HTTPServer/bind()``.
public func buildApplication(_ configuration: ServerConfiguration, logger: Logger) throws -> Application {
    try configuration.validate()
    let fileManager = FileManager.default
    do {
        try fileManager.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
    } catch {
        throw ConfigurationError(
            "Cannot create the data directory \(configuration.dataDirectory): \(error.localizedDescription)"
        )
    }
    let lock = try DataDirectoryLock(dataDirectory: configuration.dataDirectory)
    let credentialsPath = (configuration.dataDirectory as NSString).appendingPathComponent("credentials")
    let (credentials, created): (Credentials, Bool)
    do { (credentials, created) = try CredentialsFile.loadOrCreate(path: credentialsPath) } catch {
        throw ConfigurationError(error.description)
    }
    let store: SQLiteResourceStore
    do {
        store = try SQLiteResourceStore(
            path: (configuration.dataDirectory as NSString).appendingPathComponent("strait.sqlite")
        )
    } catch {
        throw ConfigurationError(error.message)
    }
    let reaped = OrphanReaper.reap(dataDirectory: configuration.dataDirectory)
    if !reaped.isEmpty {
        logger.warning("stopped instance processes left by an earlier run", metadata: ["pids": "\(reaped)"])
    }
    let clock = SystemWallClock()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    let account = AccountContext(region: configuration.region, accountID: configuration.accountID)
    let verifier = SigV4Verifier(
        region: configuration.region,
        service: "sagemaker",
        credentials: StaticCredentialProvider([credentials]),
        clock: clock
    )
    let timeout = configuration.invocationTimeout.components
    let dataPlane = DataPlane(
        group: group,
        verifier: verifier,
        account: account,
        zones: configuration.zones,
        invocationTimeout: .nanoseconds(timeout.seconds * 1_000_000_000 + timeout.attoseconds / 1_000_000_000),
        endpointStatus: { name in (try? store.endpoint(named: name))?.status.rawValue }
    )
    let dockerSocket: String?
    do {
        dockerSocket = try DockerEngine.socketPath(
            option: configuration.dockerHost,
            environment: ProcessInfo.processInfo.environment
        )
    } catch {
        throw ConfigurationError(error.message)
    }
    let reconciler = ProcessReconciler(
        configuration: SupervisorConfiguration(
            dataDirectory: configuration.dataDirectory,
            workerExecutable: configuration.workerExecutable,
            zones: configuration.zones,
            stopGrace: configuration.instanceStopGrace,
            defaultStartupTimeout: configuration.startupHealthCheckTimeout,
            modelData: .fromEnvironment(
                ProcessInfo.processInfo.environment,
                region: configuration.region,
                endpointURL: configuration.s3EndpointURL,
                maximumBytes: configuration.maxModelDataBytes
            ),
            imageTable: configuration.images,
            instanceCapacity: configuration.instanceCapacity,
            dockerSocket: dockerSocket
        ),
        probe: HealthProbe(group: group),
        clock: clock,
        logger: logger,
        publish: dataPlane.publish
    )
    let controller = EndpointController(store: store, reconciler: reconciler, clock: clock, logger: logger)
    let controlPlane = ControlPlane(
        store: store,
        account: account,
        clock: clock,
        controller: controller,
        limits: ControlPlaneLimits(instancesPerType: configuration.maxInstancesPerType)
    )
    let apiServer = HTTPServer(
        name: "regional",
        host: configuration.listenHost,
        port: configuration.listenPort,
        group: group,
        responder: APIResponder(
            controlPlane: controlPlane,
            verifier: verifier,
            metrics: dataPlane.metricsText,
            admin: AdminAPI(store: store, reconciler: reconciler, dataDirectory: configuration.dataDirectory)
        ),
        dataPlane: dataPlane,
        maximumBodySize: APIResponder.maximumBodySize,
        logger: logger
    )
    // A zone's runtime endpoint is its own listener, unless the regional listener already owns the address (a
    // wildcard --listen, or the zone's address itself): then the regional listener serves it, telling the zone from
    // the address a connection came in on.
    let wildcard = ["0.0.0.0", "::", ""].contains(configuration.listenHost)
    var zonalServers: [HTTPServer] = []
    for zone in configuration.zones.zones {
        guard let address = zone.subnets.first?.cidr.address(at: 1), !wildcard, address != configuration.listenHost
        else { continue }
        zonalServers.append(
            HTTPServer(
                name: zone.name,
                host: address,
                port: configuration.listenPort,
                group: group,
                responder: nil,
                dataPlane: dataPlane,
                zone: zone.name,
                maximumBodySize: DataPlane.maximumPayloadSize,
                logger: logger
            )
        )
    }
    do { try controller.recoverEndpoints() } catch {
        throw ConfigurationError("Cannot read the stored endpoints: \(error.message)")
    }
    return Application(
        configuration: configuration,
        services: [reconciler, controller] + zonalServers + [apiServer],
        apiServer: apiServer,
        zonalServers: zonalServers,
        credentialsPath: credentialsPath,
        credentialsCreated: created,
        group: group,
        lock: lock
    )
}

import Foundation
public import Logging
import NIOCore
public import NIOPosix
public import ServiceLifecycle
import StraitAuth
import StraitControlPlane
import StraitCore
import StraitDataPlane
public import StraitNetwork
import StraitStore
import StraitSupervisor

/// A built Strait server: its services in start order, and what to tell the user once it listens.
public struct Application: Sendable {
    public let configuration: ServerConfiguration
    /// In dependency order; ServiceGroup stops them in reverse (listener first, instances last).
    public let services: [any Service]
    /// The regional endpoint: the SageMaker API and InvokeEndpoint across all zones.
    public let apiServer: HTTPServer
    /// The interface endpoints' listeners (the default VPC's runtime endpoint is the zonal endpoints).
    let endpointListeners: EndpointListeners
    /// Strait's private DNS, when `--dns-listen` asks for it.
    let dnsServer: DNSServer?
    /// The EC2 network.
    public let network: NetworkAPI
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

    /// The DNS server's address (after ``bind()``), if it runs.
    public var dnsAddress: String? {
        dnsServer.flatMap { server in server.port.map { "\(server.host):\($0)" } }
    }

    /// Binds the regional listener, then the interface endpoints' listeners on the same port, then the DNS server.
    public func bind() async throws {
        try await apiServer.bind()
        await endpointListeners.start(port: apiServer.port ?? configuration.listenPort)
        try await dnsServer?.bind()
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
          EC2 API:        \(endpointURL) (VPCs, subnets, security groups, interface endpoints)
          Private DNS:    \(dnsAddress ?? "off (--dns-listen HOST:PORT turns it on)")

        Point boto3 and the AWS CLI at it:
          export AWS_SHARED_CREDENTIALS_FILE=\(credentialsPath)
          export AWS_DEFAULT_REGION=\(configuration.region)
          export AWS_ENDPOINT_URL_SAGEMAKER=\(endpointURL)
          export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=\(zonalURLs.first?.url ?? endpointURL)
          export AWS_ENDPOINT_URL_EC2=\(endpointURL)
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
    let network = try makeNetwork(configuration, store: store, clock: SystemWallClock())
    if ["0.0.0.0", "::", ""].contains(configuration.listenHost) {
        logger.notice(
            "--listen is a wildcard address: interface endpoints get no listeners of their own; the regional listener serves their addresses and checks their security groups"
        )
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
    let dataPlane = DataPlane(
        group: group,
        verifier: verifier,
        account: account,
        zones: configuration.zones,
        invocationTimeout: TimeAmount(configuration.invocationTimeout),
        busyPoll: TimeAmount(configuration.busyPoll),
        endpointStatus: { name in (try? store.endpoint(named: name))?.status.rawValue },
        interfaceZone: { address in network.interfaceZone(ofAddress: address) },
        subnetZone: { address in network.subnetZone(ofAddress: address) }
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
            dockerSocket: dockerSocket,
            subnetLookup: { id in
                network.placement(ofSubnet: id).map { placement in
                    (placement.zone, Subnet(id: id, cidr: placement.cidr))
                }
            }
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
        limits: ControlPlaneLimits(instancesPerType: configuration.maxInstancesPerType),
        vpcConfigValidator: { subnets, groups throws(ServiceError) in
            try network.validateVpcConfig(subnets: subnets, securityGroups: groups)
        }
    )
    let ec2Verifier = SigV4Verifier(
        region: configuration.region,
        service: "ec2",
        credentials: StaticCredentialProvider([credentials]),
        clock: clock
    )
    let responder = APIResponder(
        controlPlane: controlPlane,
        verifier: verifier,
        metrics: nil,
        admin: AdminAPI(store: store, reconciler: reconciler, dataDirectory: configuration.dataDirectory),
        ec2: (network, ec2Verifier)
    )
    let endpointListeners = EndpointListeners(
        network: network,
        group: group,
        dataPlane: dataPlane,
        apiResponder: responder,
        regionalHost: configuration.listenHost,
        logger: logger
    )
    let dnsServer = configuration.dnsListen.map {
        DNSServer(host: $0.host, port: $0.port, group: group, logger: logger)
    }
    dnsServer?.publish(network.dnsSnapshot(network.current))
    // `state` is the current one, read after the change.
    network.setOnChange { [weak dnsServer, weak network, weak endpointListeners] state in
        if let network { dnsServer?.publish(network.dnsSnapshot(state)) }
        endpointListeners?.networkChanged()
    }
    // A wildcard listener owns every address on its port, the interface endpoints' too: it checks their security
    // groups itself, by the address a connection came in on.
    var admission: (@Sendable (SocketAddress?, SocketAddress?) -> Bool)?
    if ["0.0.0.0", "::", ""].contains(configuration.listenHost) {
        admission = { remote, local in admitsOnWildcard(network, remote, local) }
    }
    let apiServer = HTTPServer(
        name: "regional",
        host: configuration.listenHost,
        port: configuration.listenPort,
        group: group,
        responder: APIResponder(
            controlPlane: controlPlane,
            verifier: verifier,
            metrics: { await dataPlane.metricsText() + endpointListeners.metricsText() },
            admin: AdminAPI(store: store, reconciler: reconciler, dataDirectory: configuration.dataDirectory),
            ec2: (network, ec2Verifier)
        ),
        dataPlane: dataPlane,
        maximumBodySize: APIResponder.maximumBodySize,
        admission: admission,
        logger: logger
    )
    do { try controller.recoverEndpoints() } catch {
        throw ConfigurationError("Cannot read the stored endpoints: \(error.message)")
    }
    return Application(
        configuration: configuration,
        services: [reconciler, controller, endpointListeners] + (dnsServer.map { [$0] } ?? []) + [apiServer],
        apiServer: apiServer,
        endpointListeners: endpointListeners,
        dnsServer: dnsServer,
        network: network,
        credentialsPath: credentialsPath,
        credentialsCreated: created,
        group: group,
        lock: lock
    )
}

/// The EC2 network: loaded from the store (made at first start), written back whole on every change.
private func makeNetwork(
    _ configuration: ServerConfiguration,
    store: SQLiteResourceStore,
    clock: any WallClock
) throws -> NetworkAPI {
    let stored: NetworkState?
    do {
        stored = try store.networkDocument().map { text in
            try JSONDecoder().decode(NetworkState.self, from: Data(text.utf8))
        }
    } catch {
        throw ConfigurationError("Cannot read the stored network (VPCs, subnets, endpoints): \(error)")
    }
    do {
        return try NetworkAPI(
            region: configuration.region,
            accountID: configuration.accountID,
            zones: configuration.zones,
            stored: stored,
            clock: clock,
            reservedAddresses: Set([configuration.listenHost] + (configuration.dnsListen.map { [$0.host] } ?? [])),
            persist: { state throws(ServiceError) in
                do {
                    let data = try JSONEncoder().encode(state)
                    try store.saveNetworkDocument(String(decoding: data, as: UTF8.self))
                } catch {
                    throw ServiceError(
                        code: "InternalError",
                        message: "Cannot store the network: \(error)",
                        status: 500
                    )
                }
            },
            inUse: { () throws(ServiceError) in
                var subnets = Set<String>()
                var groups = Set<String>()
                let records: [EndpointRecord]
                do { records = try store.endpoints() } catch {
                    throw ServiceError(
                        code: "InternalError",
                        message: "Cannot read the endpoints: \(error)",
                        status: 500
                    )
                }
                for record in records {
                    for spec in [record.deployment] + (record.pending.map { [$0] } ?? []) {
                        for variant in spec.variants {
                            subnets.formUnion(variant.subnetIDs)
                            groups.formUnion(variant.securityGroupIDs ?? [])
                        }
                    }
                }
                return (subnets, groups)
            }
        )
    } catch {
        throw ConfigurationError("Cannot set up the network: \(error.message)")
    }
}

/// The admission check of a wildcard regional listener: the security groups of the interface endpoint whose address
/// the connection came in on, if any.
private func admitsOnWildcard(_ network: NetworkAPI, _ remote: SocketAddress?, _ local: SocketAddress?) -> Bool {
    guard let text = remote?.ipAddress, let source = IPv4CIDR.parseAddress(text), let address = local?.ipAddress,
        let port = local?.port
    else { return true }
    return network.admits(source: source, local: address, port: port)
}

import Foundation
public import Logging
import NIOCore
public import NIOPosix
public import ServiceLifecycle
import StraitAuth
import StraitControlPlane
import StraitCore
import StraitStore
import StraitSupervisor

/// A built Strait server: its services in start order, and what to tell the user once it listens.
public struct Application: Sendable {
    public let configuration: ServerConfiguration
    /// In dependency order; ServiceGroup stops them in reverse (listener first, instances last).
    public let services: [any Service]
    public let apiServer: HTTPServer
    public let credentialsPath: String
    public let credentialsCreated: Bool
    public let group: MultiThreadedEventLoopGroup

    /// The regional API endpoint URL (valid after the listener is bound).
    public var endpointURL: String {
        let host = configuration.listenHost.contains(":") ? "[\(configuration.listenHost)]" : configuration.listenHost
        return "http://\(host):\(apiServer.port ?? configuration.listenPort)"
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

        Point boto3 and the AWS CLI at it:
          export AWS_SHARED_CREDENTIALS_FILE=\(credentialsPath)
          export AWS_DEFAULT_REGION=\(configuration.region)
          export AWS_ENDPOINT_URL_SAGEMAKER=\(endpointURL)
        """
    }
}

/// The composition root: builds the whole server from a configuration. Used by `strait serve` and by tests.
///
/// Creates the data directory, opens (or creates) the store and the credentials file, and wires the control plane,
/// the endpoint controller and the process backend. Nothing listens until ``HTTPServer/bind()``.
public func buildApplication(_ configuration: ServerConfiguration, logger: Logger) throws -> Application {
    do { try configuration.validate() } catch { throw error }
    let fileManager = FileManager.default
    do {
        try fileManager.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
    } catch {
        throw ConfigurationError(
            "Cannot create the data directory \(configuration.dataDirectory): \(error.localizedDescription)"
        )
    }
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
    let reconciler = ProcessReconciler(
        configuration: SupervisorConfiguration(
            dataDirectory: configuration.dataDirectory,
            workerExecutable: configuration.workerExecutable,
            zones: configuration.zones,
            stopGrace: configuration.instanceStopGrace
        ),
        probe: HealthProbe(group: group),
        clock: clock,
        logger: logger
    )
    let controller = EndpointController(store: store, reconciler: reconciler, clock: clock, logger: logger)
    let account = AccountContext(region: configuration.region, accountID: configuration.accountID)
    let controlPlane = ControlPlane(
        store: store,
        account: account,
        clock: clock,
        controller: controller,
        limits: ControlPlaneLimits(instancesPerType: configuration.maxInstancesPerType)
    )
    let verifier = SigV4Verifier(
        region: configuration.region,
        service: "sagemaker",
        credentials: StaticCredentialProvider([credentials]),
        clock: clock
    )
    let apiServer = HTTPServer(
        name: "api",
        host: configuration.listenHost,
        port: configuration.listenPort,
        group: group,
        responder: APIResponder(controlPlane: controlPlane, verifier: verifier),
        maximumBodySize: APIResponder.maximumBodySize,
        logger: logger
    )
    do { try controller.recoverEndpoints() } catch {
        throw ConfigurationError("Cannot read the stored endpoints: \(error.message)")
    }
    return Application(
        configuration: configuration,
        services: [reconciler, controller, apiServer],
        apiServer: apiServer,
        credentialsPath: credentialsPath,
        credentialsCreated: created,
        group: group
    )
}

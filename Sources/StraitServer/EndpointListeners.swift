import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StraitCore
import StraitDataPlane
import StraitNetwork
import Synchronization

/// Interface VPC endpoints as real listeners: one per network interface, on the interface's address and the regional
/// port. A runtime endpoint's listener serves InvokeEndpoint in its subnet's zone; an API endpoint's serves the
/// SageMaker API. Each listener admits a connection only if a rule of one of its endpoint's security groups allows
/// the peer's address. The default VPC's runtime endpoint is the zonal endpoints.
///
/// A `Service`: `run()` keeps the listeners in line with the network after every accepted EC2 change, and stops
/// them all at shutdown.
final class EndpointListeners: Service {
    private struct Listener {
        let server: HTTPServer
        let endpointID: String
        let interfaceID: String
        let address: String
        let zone: String
    }

    private let network: NetworkAPI
    private let group: MultiThreadedEventLoopGroup
    private let dataPlane: DataPlane
    private let apiResponder: any BufferedResponder
    private let regionalHost: String
    private let logger: Logger
    private let listeners = Mutex<[String: Listener]>([:])
    /// Interfaces whose address could not be bound, with the reason (retried at the next change).
    private let failures = Mutex<[String: String]>([:])
    private let port = Mutex<Int?>(nil)
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation
    /// Listeners opened since `run()` last looked, for it to run.
    private let opened = Mutex<[HTTPServer]>([])

    init(
        network: NetworkAPI,
        group: MultiThreadedEventLoopGroup,
        dataPlane: DataPlane,
        apiResponder: any BufferedResponder,
        regionalHost: String,
        logger: Logger
    ) {
        self.network = network
        self.group = group
        self.dataPlane = dataPlane
        self.apiResponder = apiResponder
        self.regionalHost = regionalHost
        self.logger = logger
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A wildcard regional listener already owns every address on its port: it serves the default zonal endpoints
    /// itself (telling the zone from the local address), and no interface listener can be opened.
    var disabled: Bool { ["0.0.0.0", "::", ""].contains(regionalHost) }

    /// Tells `run()` the network changed.
    func networkChanged() { changed.yield() }

    /// Opens the listeners of the stored network on `port` (the regional listener's). Called once, before `run()`.
    func start(port: Int) async {
        self.port.withLock { $0 = port }
        await sync()
    }

    func run() async throws {
        let stopping = Stopping()
        await withDiscardingTaskGroup { tasks in
            runOpened(in: &tasks)
            // An address that could not be bound (still held by another process, say) is tried again every 5 s.
            tasks.addTask {
                var seconds = 0
                while !stopping.value, !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    seconds += 1
                    if seconds % 5 == 0, !self.failures.withLock({ $0.isEmpty }) { self.changed.yield() }
                }
            }
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    for await _ in changes {
                        await sync()
                        runOpened(in: &tasks)
                    }
                } onGracefulShutdown: {
                    self.changed.finish()
                }
            } onCancel: {
                self.changed.finish()
            }
            stopping.value = true
        }
    }

    /// Runs the listeners opened since the last look, each in a task of its own.
    private func runOpened(in tasks: inout DiscardingTaskGroup) {
        let servers = opened.withLock { servers in
            defer { servers = [] }
            return servers
        }
        for server in servers { tasks.addTask { try? await server.run() } }
    }

    /// Closes listeners whose interface is gone or moved, and opens those not open yet.
    private func sync() async {
        guard !disabled, let port = port.withLock({ $0 }) else { return }
        let state = network.current
        var wanted: [String: (endpoint: VPCEndpointRecord, interface: NetworkInterfaceRecord, zone: String)] = [:]
        for endpoint in state.vpcEndpoints {
            for interface in endpoint.interfaces where interface.address != regionalHost {
                guard let zone = state.subnet(interface.subnetID)?.zone else { continue }
                wanted[interface.id] = (endpoint, interface, zone)
            }
        }
        let stale = listeners.withLock { listeners in
            let keys = listeners.keys.filter { key in
                guard let listener = listeners[key], let want = wanted[key] else { return true }
                return listener.address != want.interface.address || listener.zone != want.zone
            }
            return keys.compactMap { listeners.removeValue(forKey: $0) }
        }
        for listener in stale {
            // Closed before anything is bound again: a new interface may take the same address.
            await listener.server.close()
            logger.info(
                "interface endpoint listener closed",
                metadata: ["endpoint": "\(listener.endpointID)", "address": "\(listener.address)"]
            )
        }
        let open = listeners.withLock { Set($0.keys) }
        for (id, want) in wanted.sorted(by: { $0.key < $1.key }) where !open.contains(id) {
            let server = makeServer(endpoint: want.endpoint, interface: want.interface, zone: want.zone, port: port)
            do {
                try await server.bind(port: port)
            } catch {
                let reason = "cannot listen on \(want.interface.address):\(port): \(error)"
                let first = failures.withLock { $0.updateValue(reason, forKey: id) != reason }
                if first {
                    logger.error(
                        "interface endpoint listener not opened",
                        metadata: ["endpoint": "\(want.endpoint.id)", "reason": "\(reason)"]
                    )
                }
                continue
            }
            _ = failures.withLock { $0.removeValue(forKey: id) }
            listeners.withLock {
                $0[id] = Listener(
                    server: server,
                    endpointID: want.endpoint.id,
                    interfaceID: id,
                    address: want.interface.address,
                    zone: want.zone
                )
            }
            opened.withLock { $0.append(server) }
            logger.info(
                "interface endpoint listener opened",
                metadata: ["endpoint": "\(want.endpoint.id)", "zone": "\(want.zone)", "url": "\(server.url)"]
            )
        }
    }

    private func makeServer(
        endpoint: VPCEndpointRecord,
        interface: NetworkInterfaceRecord,
        zone: String,
        port: Int
    ) -> HTTPServer {
        let network = self.network
        let endpointID = endpoint.id
        let admission: @Sendable (SocketAddress?, SocketAddress?) -> Bool = { peer, _ in
            guard let text = peer?.ipAddress, let address = IPv4CIDR.parseAddress(text) else { return false }
            return network.admits(source: address, endpointID: endpointID, port: port)
        }
        let isRuntime = network.services[endpoint.serviceName]?.kind != .api
        return HTTPServer(
            name: "\(endpoint.id) \(zone)",
            host: interface.address,
            port: port,
            group: group,
            responder: isRuntime ? nil : apiResponder,
            dataPlane: isRuntime ? dataPlane : nil,
            zone: isRuntime ? zone : nil,
            maximumBodySize: isRuntime ? DataPlane.maximumPayloadSize : APIResponder.maximumBodySize,
            admission: admission,
            logger: logger
        )
    }

    /// Connections each listener's security groups refused, as Prometheus text.
    func metricsText() -> String {
        let rows = listeners.withLock { listeners in
            listeners.values.sorted { $0.interfaceID < $1.interfaceID }.map {
                "strait_vpc_endpoint_denied_connections_total{vpc_endpoint=\"\($0.endpointID)\",zone=\"\($0.zone)\","
                    + "address=\"\($0.address)\"} \($0.server.deniedConnections.value)\n"
            }
        }
        return "# HELP strait_vpc_endpoint_denied_connections_total Connections refused by the interface endpoint's "
            + "security groups.\n# TYPE strait_vpc_endpoint_denied_connections_total counter\n" + rows.joined()
    }
}

/// A flag the retry task reads to know the service is stopping.
private final class Stopping: Sendable {
    private let flag = Atomic<Bool>(false)
    var value: Bool {
        get { flag.load(ordering: .relaxed) }
        set { flag.store(newValue, ordering: .relaxed) }
    }
}

public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
public import StraitDataPlane
import Synchronization

/// An HTTP/1.1 listener: InvokeEndpoint on the raw NIO data path when it has a data plane, everything else buffered
/// and handed to a ``BufferedResponder`` (the control plane) when it has one.
///
/// A `Service`: `run()` serves until graceful shutdown, then stops accepting, lets in-flight requests finish (for
/// at most `drainTimeout`) and closes the remaining connections.
public final class HTTPServer: Service {
    public let name: String
    public let host: String
    private let requestedPort: Int
    private let group: MultiThreadedEventLoopGroup
    private let responder: (any BufferedResponder)?
    private let dataPlane: DataPlane?
    private let zone: String?
    private let maximumBodySize: Int
    private let drainTimeout: Duration
    private let logger: Logger
    /// Decides, from the peer's and the local address, whether an accepted connection may stay (security groups);
    /// nil admits all.
    private let admission: (@Sendable (_ remote: SocketAddress?, _ local: SocketAddress?) -> Bool)?
    /// Connections `admission` refused.
    public let deniedConnections = Counter()
    let activity = ListenerActivity()
    private let channel = Mutex<(any Channel)?>(nil)
    private let boundPort = Mutex<Int?>(nil)

    /// - Parameters:
    ///   - responder: answers requests that are not invocations; nil answers them with 404.
    ///   - dataPlane: serves InvokeEndpoint; nil leaves every request to `responder`.
    ///   - zone: the zone a zonal listener serves; nil for the regional endpoint.
    public init(
        name: String,
        host: String,
        port: Int,
        group: MultiThreadedEventLoopGroup,
        responder: (any BufferedResponder)?,
        dataPlane: DataPlane?,
        zone: String? = nil,
        maximumBodySize: Int,
        drainTimeout: Duration = .seconds(10),
        admission: (@Sendable (_ remote: SocketAddress?, _ local: SocketAddress?) -> Bool)? = nil,
        logger: Logger
    ) {
        self.admission = admission
        self.name = name
        self.host = host
        self.requestedPort = port
        self.group = group
        self.responder = responder
        self.dataPlane = dataPlane
        self.zone = zone
        self.maximumBodySize = maximumBodySize
        self.drainTimeout = drainTimeout
        self.logger = logger
    }

    /// Binds the listening socket, on `port` if given (else the configured one). Call before `run()`; the bound
    /// port is then in ``port``.
    public func bind(port: Int? = nil) async throws {
        let (responder, dataPlane, zone, activity, maximumBodySize, admission) = (
            self.responder, self.dataPlane, self.zone, self.activity, self.maximumBodySize, self.admission
        )
        let denied = deniedConnections
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // Security groups: a refused peer is closed before its connection is registered for reading.
                if let admission, !admission(channel.remoteAddress, channel.localAddress) {
                    denied.increment()
                    return channel.eventLoop.makeFailedFuture(ConnectionRefused())
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPConnectionHandler(
                            dataPlane: dataPlane,
                            zone: zone,
                            responder: responder,
                            activity: activity,
                            maximumBodySize: maximumBodySize
                        )
                    )
                }
            }
            .bind(host: host, port: port ?? requestedPort).get()
        self.channel.withLock { $0 = channel }
        boundPort.withLock { $0 = channel.localAddress?.port }
    }

    /// Stops accepting and lets ``run()`` drain and return (for a listener that is no longer wanted); returns once
    /// the listening socket is closed, so its address can be bound again.
    public func close() async {
        try? await channel.withLock { $0 }?.close()
    }

    /// The port the listener is bound to (after ``bind()``).
    public var port: Int? { boundPort.withLock { $0 } }

    /// The listener's URL (after ``bind()``).
    public var url: String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return "http://\(shown):\(port ?? requestedPort)"
    }

    public func run() async throws {
        guard let channel = channel.withLock({ $0 }) else { throw CancellationError() }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        await drain()
    }

    /// Waits for in-flight requests to finish (bounded), then closes every connection.
    private func drain() async {
        activity.startDraining()
        let clock = ContinuousClock()
        let deadline = clock.now + drainTimeout
        while activity.requestsInFlight > 0, clock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for connection in activity.openConnections { try? await connection.close() }
        logger.info("listener stopped", metadata: ["listener": "\(name)"])
    }
}

/// A connection a listener's admission check refused.
struct ConnectionRefused: Error {}

/// A count shared between threads.
public final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    public init() {}
    public func increment() { atomic.wrappingAdd(1, ordering: .relaxed) }
    public var value: Int { atomic.load(ordering: .relaxed) }
}

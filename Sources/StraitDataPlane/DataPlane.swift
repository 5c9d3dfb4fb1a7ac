public import NIOCore
import NIOPosix
public import StraitAuth
public import StraitCore

/// The invocation path's shared parts: the routing snapshot each event loop reads, the upstream connection pools,
/// request authentication, and the settings of a call.
///
/// Every event loop has its own ``LoopContext`` (snapshot, pool, random source), touched only on that loop, so an
/// invocation takes no lock and never waits for the control plane. ``publish(_:)`` hands a new snapshot to every
/// loop.
public final class DataPlane: Sendable {
    /// SageMaker's request and response payload limit: 6 MiB.
    public static let maximumPayloadSize = 6 * 1024 * 1024
    /// The longest an event loop polls before it sleeps (``BusyPoll``); longer windows are cut to this.
    public static let longestBusyPoll = TimeAmount.milliseconds(10)

    let verifier: SigV4Verifier
    let account: AccountContext
    /// How long the instance has to answer: 60 s, as SageMaker.
    let invocationTimeout: TimeAmount
    /// The status of an endpoint the snapshot does not route to, for the error message (slow path only).
    let endpointStatus: @Sendable (String) -> String?
    /// The zones, to tell which zone a caller of the regional endpoint is in from its address.
    let zones: ZoneLayout
    /// The zone of an interface endpoint's address (a connection's local address), from the network.
    let interfaceZone: (@Sendable (String) -> String?)?
    /// The zone of the subnet holding an address (a caller's), from the network.
    let subnetZone: (@Sendable (String) -> String?)?
    private let contexts: [LoopContext]

    public init(
        group: any EventLoopGroup,
        verifier: SigV4Verifier,
        account: AccountContext,
        zones: ZoneLayout,
        invocationTimeout: TimeAmount = .seconds(60),
        busyPoll: TimeAmount = .zero,
        endpointStatus: @escaping @Sendable (String) -> String?,
        interfaceZone: (@Sendable (String) -> String?)? = nil,
        subnetZone: (@Sendable (String) -> String?)? = nil
    ) {
        self.interfaceZone = interfaceZone
        self.subnetZone = subnetZone
        self.verifier = verifier
        self.account = account
        self.zones = zones
        self.invocationTimeout = invocationTimeout
        self.endpointStatus = endpointStatus
        let loops = Array(group.makeIterator())
        let calls = loops.map { _ in LoopCalls() }
        self.contexts = loops.indices.map { index in
            LoopContext(
                eventLoop: loops[index],
                busyPoll: BusyPoll(window: min(busyPoll, Self.longestBusyPoll), own: calls[index], all: calls)
            )
        }
        // Finding the selector takes NIOPosix's loops (a socket registered on them as a pipe channel).
        guard busyPoll > .zero, group is MultiThreadedEventLoopGroup else { return }
        for context in contexts {
            BusyPoll.findSelector(of: context.eventLoop).whenSuccess { context.busyPoll.selector = $0 ?? -1 }
        }
    }

    /// Whether every event loop's poll before sleeping is ready (its selector found); false with polling off.
    func busyPollActive() async -> Bool {
        var active = !contexts.isEmpty
        for context in contexts {
            let ready = try? await context.eventLoop.submit { context.busyPoll.isActive }.get()
            active = active && ready == true
        }
        return active
    }

    /// Makes `table` the snapshot every event loop routes by, from its next invocation on.
    public func publish(_ table: RoutingTable) {
        for context in contexts {
            context.eventLoop.execute { context.table = table }
        }
    }

    /// The metrics of every event loop, merged, as Prometheus text.
    public func metricsText() async -> String {
        var merged = LoopMetrics()
        var table = RoutingTable.empty
        var polls = PollOutcomes()
        for context in contexts {
            guard
                let (metrics, loopTable, loopPolls) = try? await context.eventLoop.submit({
                    (context.metrics, context.table, context.busyPoll.outcomes)
                }).get()
            else { continue }
            merged.merge(metrics)
            table = loopTable
            polls.merge(loopPolls)
        }
        var outstanding: [(endpoint: String, variant: String, instance: InstanceRoute)] = []
        for endpoint in table.endpoints.values.sorted(by: { $0.name < $1.name }) {
            for variant in endpoint.variants {
                for instance in variant.instances { outstanding.append((endpoint.name, variant.name, instance)) }
            }
        }
        return PrometheusText.render(merged, outstanding: outstanding, polls: polls)
    }

    /// The zone of the runtime interface whose address is `address` (a connection's local address), if any.
    func listenerZone(of address: SocketAddress?) -> String? {
        guard let ip = address?.ipAddress else { return nil }
        if let interfaceZone { return interfaceZone(ip) }
        return zones.zones.first { $0.subnets.first?.cidr.address(at: 1) == ip }?.name
    }

    /// The zone whose subnets hold `address`, if any.
    func zone(of address: SocketAddress?) -> String? {
        guard let ip = address?.ipAddress else { return nil }
        if let subnetZone { return subnetZone(ip) }
        for zone in zones.zones where zone.subnets.contains(where: { $0.cidr.contains(ip) }) { return zone.name }
        return nil
    }

    /// The context of the event loop a connection runs on.
    func context(for eventLoop: any EventLoop) -> LoopContext? {
        for context in contexts where context.eventLoop === eventLoop { return context }
        return nil
    }
}

/// One event loop's share of the data plane. Only ever touched on `eventLoop`.
// @unchecked Sendable: every mutable member is read and written on `eventLoop` only (publish hops there).
final class LoopContext: @unchecked Sendable {
    let eventLoop: any EventLoop
    var table = RoutingTable.empty
    var random = RoutingRandom()
    var metrics = LoopMetrics()
    let pool: UpstreamPool
    /// Polling before the loop sleeps (``BusyPoll``), shared by its connections and its pool.
    let busyPoll: BusyPoll
    let signingKeys = SigningKeyCache()
    private let requestIDPrefix: String
    private var requestCounter: UInt64 = 0

    init(eventLoop: any EventLoop, busyPoll: BusyPoll = BusyPoll(window: .zero)) {
        self.eventLoop = eventLoop
        self.busyPoll = busyPoll
        self.pool = UpstreamPool(eventLoop: eventLoop, busyPoll: busyPoll)
        var random = SystemRandomNumberGenerator()
        let bits = random.next() as UInt64
        let hex = String(bits, radix: 16).leftPadded(to: 16)
        // UUID-shaped: 8-4-4-4 from a random per-loop prefix, then a 12-digit counter.
        let characters = Array(hex)
        requestIDPrefix =
            "\(String(characters[0..<8]))-\(String(characters[8..<12]))-\(String(characters[12..<16]))-\(String(bits >> 48 & 0xFFFF, radix: 16).leftPadded(to: 4))-"
    }

    /// A request id unique to this process: no random draw or UUID formatting per request, and no allocation (the
    /// loop's prefix and the counter are written straight into the response).
    func nextRequestID() -> RequestID {
        requestCounter &+= 1
        return RequestID(prefix: requestIDPrefix, counter: requestCounter)
    }
}

/// An `x-amzn-RequestId`: its event loop's UUID-shaped prefix (`8-4-4-4-`, shared by the loop's ids) and a counter
/// as 12 hex digits.
struct RequestID: Equatable, CustomStringConvertible {
    let prefix: String
    let counter: UInt64

    var description: String {
        var text = ByteBuffer()
        write(to: &text)
        return String(buffer: text)
    }

    /// Writes the id into `out`, as ``description`` spells it.
    func write(to out: inout ByteBuffer) {
        out.writeString(prefix)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 12) { bytes in
            for position in 0..<12 { bytes[position] = digit(position) }
            return 12
        }
    }

    /// Hex digit `position` of the counter's 12, most significant first.
    private func digit(_ position: Int) -> UInt8 {
        UInt8.lowercaseHexDigit(UInt8(truncatingIfNeeded: counter >> UInt64(44 - 4 * position)) & 0x0F)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

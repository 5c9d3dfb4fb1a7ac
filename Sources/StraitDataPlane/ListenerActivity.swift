public import NIOCore
import Synchronization

/// What a listener has open and in flight, so that a graceful shutdown can wait for in-flight calls and then close
/// the connections. Counting a request is lock-free; connections are tracked as they open and close.
public final class ListenerActivity: Sendable {
    private let inFlight = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])

    public init() {}

    /// Counts a request in; returns false when the listener is draining (answer it, then close the connection).
    public func requestStarted() -> Bool {
        inFlight.add(1, ordering: .relaxed)
        return !draining.load(ordering: .relaxed)
    }

    public func requestFinished() { inFlight.subtract(1, ordering: .relaxed) }

    public var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    public func startDraining() { draining.store(true, ordering: .relaxed) }

    public func connectionOpened(_ channel: any Channel) {
        connections.withLock { $0[ObjectIdentifier(channel)] = channel }
    }

    public func connectionClosed(_ channel: any Channel) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    public var openConnections: [any Channel] { connections.withLock { Array($0.values) } }
}

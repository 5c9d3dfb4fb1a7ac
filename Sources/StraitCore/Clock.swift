public import Foundation

/// Wall-clock time, injected so that lifecycle logic and signatures can be tested at fixed instants.
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The system's clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

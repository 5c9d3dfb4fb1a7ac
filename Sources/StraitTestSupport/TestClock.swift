public import Foundation
public import StraitCore
import Synchronization

/// A `WallClock` for tests: it stands still at a chosen instant unless moved with ``advance(by:)`` or ``set(_:)``,
/// or, with a non-zero `step`, moves on by `step` seconds after each reading so that consecutive events get
/// distinct, increasing times.
public final class TestClock: WallClock {
    private let current: Mutex<Date>
    private let step: TimeInterval

    /// - Parameters:
    ///   - start: the first time ``now()`` returns.
    ///   - step: how far the clock moves on after each reading; 0 keeps it fixed.
    public init(_ start: Date, step: TimeInterval = 0) {
        current = Mutex(start)
        self.step = step
    }

    /// A clock at an ISO 8601 instant such as `2015-08-30T12:36:00Z`.
    /// - Precondition: `iso8601` is a valid internet date-time (a test-authoring error otherwise).
    public convenience init(iso8601: String, step: TimeInterval = 0) {
        guard let date = ISO8601DateFormatter().date(from: iso8601) else {
            preconditionFailure("TestClock: '\(iso8601)' is not an ISO 8601 date-time")
        }
        self.init(date, step: step)
    }

    public func now() -> Date {
        current.withLock { date in
            let reading = date
            date = date.addingTimeInterval(step)
            return reading
        }
    }

    /// The time the next reading will return, without moving the clock.
    public var peek: Date { current.withLock { $0 } }

    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}

public import Foundation

/// One serving instance as `strait instances` reports it.
public struct InstanceSummary: Sendable, Equatable {
    public let id: String
    public let variant: String
    public let zone: String
    public let address: String
    public let port: Int
    /// InService, OutOfService (its last /ping failed) or Stopped (its process ended; a replacement is coming).
    public let state: String
    public let pid: Int32
    public let restarts: Int
    public let startedAt: Date
}

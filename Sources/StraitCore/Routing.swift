import Synchronization

/// How a variant picks among its instances.
public enum RoutingStrategy: String, Sendable {
    case random = "RANDOM"
    case leastOutstandingRequests = "LEAST_OUTSTANDING_REQUESTS"
}

/// The requests in flight on one instance, shared by every event loop (for LEAST_OUTSTANDING_REQUESTS and the
/// outstanding-requests metric). Lock-free.
public final class OutstandingRequests: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    public var value: Int { count.load(ordering: .relaxed) }
    public func increment() { count.add(1, ordering: .relaxed) }
    public func decrement() { count.subtract(1, ordering: .relaxed) }
}

/// An instance that can take invocations: healthy, in a zone, at an address.
///
/// The routing snapshot's types are immutable classes, not structs: a call keeps its endpoint, variant and instance
/// while it waits for the instance and passes them along its forwarding, and a struct of six strings costs six
/// reference-count updates per copy where a class costs one.
public final class InstanceRoute: Sendable {
    public let id: String
    public let zone: String
    public let host: String
    public let port: Int
    /// A Unix socket the instance also serves invocations on (built-in runtimes): the data plane uses it instead
    /// of TCP, which saves the loopback TCP stack on every call.
    public let unixSocket: String?
    public let outstanding: OutstandingRequests
    /// Calls in flight at which the instance counts as full: a zonal endpoint then looks to other zones.
    public let capacity: Int
    /// `host:port`, for the Host header of forwarded calls (made once, not per call).
    public let hostHeader: String

    public init(
        id: String,
        zone: String,
        host: String,
        port: Int,
        unixSocket: String? = nil,
        outstanding: OutstandingRequests,
        capacity: Int = .max
    ) {
        self.id = id
        self.zone = zone
        self.host = host
        self.port = port
        self.unixSocket = unixSocket
        self.outstanding = outstanding
        self.capacity = capacity
        self.hostHeader = "\(host):\(port)"
    }

    var hasCapacity: Bool { outstanding.value < capacity }
}

/// A production variant as the data plane sees it.
public final class VariantRoute: Sendable {
    public let name: String
    public let weight: Double
    public let strategy: RoutingStrategy
    public let instances: [InstanceRoute]

    public init(name: String, weight: Double, strategy: RoutingStrategy, instances: [InstanceRoute]) {
        self.name = name
        self.weight = weight
        self.strategy = strategy
        self.instances = instances
    }
}

/// An endpoint that can be invoked.
public final class EndpointRoute: Sendable {
    public let name: String
    public let variants: [VariantRoute]

    public init(name: String, variants: [VariantRoute]) {
        self.name = name
        self.variants = variants
    }
}

/// The immutable snapshot invocations are routed by. A new one is built and published on every change; readers
/// never wait for writers.
public struct RoutingTable: Sendable {
    /// By endpoint name, lower-cased (endpoint names are unique regardless of case).
    public let endpoints: [String: EndpointRoute]

    public init(endpoints: [EndpointRoute]) {
        self.endpoints = Dictionary(endpoints.map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { _, new in new })
    }

    public static let empty = RoutingTable(endpoints: [])

    public func endpoint(named name: String) -> EndpointRoute? {
        endpoints[name] ?? endpoints[name.lowercased()]
    }
}

/// The routing decisions, as pure functions of a snapshot and a random source.
public enum Router {
    /// The variant a call goes to: the named one for a TargetVariant, else one drawn by weight
    /// (traffic share = weight / Σ weights; variants of weight 0 get none unless all are 0).
    /// - Returns: the variant's index, or nil when TargetVariant names none of them.
    public static func chooseVariant(
        _ endpoint: EndpointRoute,
        target: String?,
        random: inout RoutingRandom
    ) -> Int? {
        if let target {
            return endpoint.variants.firstIndex { $0.name == target }
        }
        let variants = endpoint.variants
        guard variants.count > 1 else { return variants.isEmpty ? nil : 0 }
        // Weights relative to the largest, so that huge weights cannot add up to infinity.
        let largest = variants.reduce(0) { max($0, $1.weight.isFinite ? $1.weight : 0) }
        guard largest > 0 else { return Int.random(in: 0..<variants.count, using: &random) }
        func share(_ weight: Double) -> Double { weight.isFinite && weight > 0 ? weight / largest : 0 }
        let total = variants.reduce(0) { $0 + share($1.weight) }
        var point = Double.random(in: 0..<total, using: &random)
        for (index, variant) in variants.enumerated() where share(variant.weight) > 0 {
            if point < share(variant.weight) { return index }
            point -= share(variant.weight)
        }
        return variants.lastIndex { share($0.weight) > 0 }
    }

    /// The instance a call goes to within a variant.
    ///
    /// A zonal endpoint (`zone` set) picks among its own zone's instances that have capacity (fewer calls in flight
    /// than ``InstanceRoute/capacity``) and spills to other zones' instances with capacity only when its zone has
    /// none; when no instance anywhere has capacity, the call queues in its own zone rather than fail. The regional
    /// endpoint (`zone` nil) picks across all zones, preferring instances with capacity. Instances in `excluded`
    /// (tried already in this call) are skipped.
    /// - Returns: the instance's index in the variant, or nil when no instance is left.
    public static func chooseInstance(
        _ variant: VariantRoute,
        zone: String?,
        excluding excluded: [String] = [],
        random: inout RoutingRandom
    ) -> Int? {
        // Tiers in order of preference. Zonal: its own zone with room left; spill to any zone with room; all full:
        // queue at home; then anything left.
        if zone != nil {
            return pick(variant, zone, excluded, inZone: true, withCapacity: true, &random)
                ?? pick(variant, zone, excluded, inZone: false, withCapacity: true, &random)
                ?? pick(variant, zone, excluded, inZone: true, withCapacity: false, &random)
                ?? pick(variant, zone, excluded, inZone: false, withCapacity: false, &random)
        }
        return pick(variant, zone, excluded, inZone: false, withCapacity: true, &random)
            ?? pick(variant, zone, excluded, inZone: false, withCapacity: false, &random)
    }

    /// One pass over the variant's instances, without allocating: a uniform draw among the eligible ones (RANDOM)
    /// or among those with the fewest calls in flight (LEAST_OUTSTANDING_REQUESTS), by reservoir sampling. A single
    /// eligible instance costs no draw.
    private static func pick(
        _ variant: VariantRoute,
        _ zone: String?,
        _ excluded: [String],
        inZone: Bool,
        withCapacity: Bool,
        _ random: inout RoutingRandom
    ) -> Int? {
        let byLoad = variant.strategy == .leastOutstandingRequests
        var chosen: Int?
        var least = Int.max
        var ties = 0
        for (index, instance) in variant.instances.enumerated() {
            if inZone, instance.zone != zone { continue }
            if withCapacity, !instance.hasCapacity { continue }
            if !excluded.isEmpty, excluded.contains(instance.id) { continue }
            let load = byLoad ? instance.outstanding.value : 0
            if load < least {
                least = load
                chosen = index
                ties = 1
            } else if load == least {
                ties += 1
                if Int.random(in: 0..<ties, using: &random) == 0 { chosen = index }
            }
        }
        return chosen
    }
}

/// A fast, seedable generator for routing draws (SplitMix64): no system call per request.
public struct RoutingRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

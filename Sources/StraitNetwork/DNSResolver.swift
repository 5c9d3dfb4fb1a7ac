/// One IPv4 address block with its VPC and, for a subnet, its zone.
public struct DNSNetwork: Sendable, Equatable {
    /// The block's base address (host order).
    public var base: UInt32
    /// The prefix length, 0...32; a block with any other length contains no address.
    public var prefixLength: Int
    /// The VPC the block belongs to.
    public var vpcID: String
    /// The zone name of a subnet; nil for a VPC's block.
    public var zone: String?

    /// Creates a block.
    public init(base: UInt32, prefixLength: Int, vpcID: String, zone: String?) {
        self.base = base
        self.prefixLength = prefixLength
        self.vpcID = vpcID
        self.zone = zone
    }

    /// Whether `address` (host order) lies in the block. Host bits set in `base` are ignored.
    public func contains(_ address: UInt32) -> Bool {
        guard (0...32).contains(prefixLength) else { return false }
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        return address & mask == base & mask
    }
}

/// One address a name resolves to, and the zone of the listener behind it.
public struct DNSAddress: Sendable, Equatable, Hashable {
    /// The zone name of the listener.
    public var zone: String
    /// The IPv4 address (host order).
    public var address: UInt32

    /// Creates an address.
    public init(zone: String, address: UInt32) {
        self.zone = zone
        self.address = address
    }
}

/// What one name resolves to, and for whom.
public struct DNSTarget: Sendable, Equatable {
    /// nil: answered to every client (the endpoint-specific vpce names). Set: only to clients in this VPC, or to
    /// clients in no VPC at all (the private DNS names, such as `runtime.sagemaker.<region>.amazonaws.com`).
    public var vpcID: String?
    /// The addresses, one per zonal listener.
    public var addresses: [DNSAddress]

    /// Creates a target.
    public init(vpcID: String?, addresses: [DNSAddress]) {
        self.vpcID = vpcID
        self.addresses = addresses
    }
}

/// Everything the DNS server answers from, rebuilt whenever the network model changes.
public struct DNSSnapshot: Sendable, Equatable {
    /// The subnets (zone set), to place a client in its VPC and zone.
    public var subnets: [DNSNetwork]
    /// The VPCs' blocks (zone nil), to place a client outside every subnet in its VPC.
    public var vpcs: [DNSNetwork]
    /// The names Strait is authoritative for. Key: the name in lowercase ASCII, without a trailing dot.
    public var names: [String: [DNSTarget]]
    /// The TTL of every answer, in seconds.
    public var ttl: UInt32

    /// Creates a snapshot. The names' keys are normalised (ASCII lowercased, one trailing dot removed); targets of
    /// keys that normalise alike are merged in key order.
    public init(subnets: [DNSNetwork], vpcs: [DNSNetwork], names: [String: [DNSTarget]], ttl: UInt32 = 60) {
        self.subnets = subnets
        self.vpcs = vpcs
        var normalised: [String: [DNSTarget]] = [:]
        for key in names.keys.sorted() {
            normalised[DNSResolver.normalise(key), default: []].append(contentsOf: names[key] ?? [])
        }
        self.names = normalised
        self.ttl = ttl
    }

    /// No networks and no names: every query is refused.
    public static let empty = DNSSnapshot(subnets: [], vpcs: [], names: [:])
}

/// The decision for one query, before it is put on the wire.
public struct DNSAnswer: Sendable, Equatable {
    /// The response code.
    public var rcode: UInt8
    /// Whether the AA bit is set (Strait is authoritative for the name).
    public var authoritative: Bool
    /// The A records to answer with (host order), in order.
    public var addresses: [UInt32]

    /// Creates an answer.
    public init(rcode: UInt8, authoritative: Bool, addresses: [UInt32]) {
        self.rcode = rcode
        self.authoritative = authoritative
        self.addresses = addresses
    }

    /// REFUSED, not authoritative: a name or class Strait does not serve.
    public static let refused = DNSAnswer(rcode: DNSRcode.refused, authoritative: false, addresses: [])
    /// NOERROR with no records: the name exists but has nothing of this type (or nothing for this client).
    public static let noData = DNSAnswer(rcode: DNSRcode.noError, authoritative: true, addresses: [])
}

/// Where a client sits in the network model.
struct DNSClientLocation: Equatable {
    /// The VPC holding the client's address, if any.
    var vpcID: String?
    /// The zone of the subnet holding the client's address, if any.
    var zone: String?
}

/// Decides the answer to a DNS query from the network model: pure, no I/O.
public enum DNSResolver {
    /// The reply for one query from `source` (the asking client's IPv4 address in host order; nil when unknown or
    /// not IPv4), at most `maxSize` bytes (see `DNSMessage.udpResponseLimit(for:)` and `tcpResponseLimit`).
    public static func answer(_ query: DNSQuery, source: UInt32?, snapshot: DNSSnapshot, maxSize: Int) -> [UInt8] {
        let decision = resolve(query, source: source, snapshot: snapshot)
        return DNSMessage.response(
            to: query,
            rcode: decision.rcode,
            answers: decision.addresses,
            ttl: snapshot.ttl,
            authoritative: decision.authoritative,
            maxSize: maxSize
        )
    }

    /// The decision for one query from `source`.
    ///
    /// A name not in the snapshot, or a class other than IN or ANY, is REFUSED. Otherwise the targets that apply to
    /// the client are those for every client plus those of the client's VPC (all of them for a client in no VPC);
    /// their addresses are merged without duplicates, narrowed to the client's zone when it has addresses there,
    /// and returned for QTYPE A or ANY. Any other QTYPE, or no applicable target, gets NOERROR with no records.
    public static func resolve(_ query: DNSQuery, source: UInt32?, snapshot: DNSSnapshot) -> DNSAnswer {
        guard query.qclass == DNSMessage.classIN || query.qclass == DNSMessage.classANY,
            let key = lookupKey(query),
            let targets = snapshot.names[key]
        else { return .refused }
        guard query.type == DNSMessage.typeA || query.type == DNSMessage.typeANY else { return .noData }

        let client = locate(source, in: snapshot)
        let applicable = targets.filter { target in
            guard let clientVPC = client.vpcID, let targetVPC = target.vpcID else { return true }
            return targetVPC == clientVPC
        }
        let candidates = applicable.flatMap(\.addresses)
        let inZone = candidates.filter { $0.zone == client.zone }
        let chosen = client.zone != nil && !inZone.isEmpty ? inZone : candidates

        var seen: Set<UInt32> = []
        let addresses = chosen.map(\.address).filter { seen.insert($0).inserted }
        return DNSAnswer(rcode: DNSRcode.noError, authoritative: true, addresses: addresses)
    }

    /// The VPC and zone of `source`: the longest-prefix subnet holding it, else the longest-prefix VPC block,
    /// else nowhere.
    static func locate(_ source: UInt32?, in snapshot: DNSSnapshot) -> DNSClientLocation {
        guard let source else { return DNSClientLocation() }
        if let subnet = longestMatch(source, in: snapshot.subnets) {
            return DNSClientLocation(vpcID: subnet.vpcID, zone: subnet.zone)
        }
        if let vpc = longestMatch(source, in: snapshot.vpcs) {
            return DNSClientLocation(vpcID: vpc.vpcID, zone: nil)
        }
        return DNSClientLocation()
    }

    private static func longestMatch(_ address: UInt32, in networks: [DNSNetwork]) -> DNSNetwork? {
        var best: DNSNetwork?
        for network in networks where network.contains(address) {
            if let current = best, current.prefixLength >= network.prefixLength { continue }
            best = network
        }
        return best
    }

    /// The snapshot key for the query's name, or nil for a name Strait cannot be authoritative for: one with
    /// non-ASCII bytes, or whose labels contain a `.` byte (which would make it read as another name).
    static func lookupKey(_ query: DNSQuery) -> String? {
        guard query.name.allSatisfy({ $0 < 0x80 }), !labelsContainDot(query.questionBytes) else { return nil }
        return normalise(String(decoding: query.name, as: UTF8.self))
    }

    /// `name` with ASCII letters lowercased and one trailing dot removed.
    static func normalise(_ name: String) -> String {
        var bytes = Array(name.utf8)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        for index in bytes.indices where (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[index]) {
            bytes[index] |= 0x20
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether a wire-form name at the start of `question` has a label containing a `.` byte. Stops, answering
    /// false, at anything it cannot read (the parser has already refused such questions).
    static func labelsContainDot(_ question: [UInt8]) -> Bool {
        var reader = DNSReader(question)
        while let length = reader.readUInt8(), length != 0, length & 0xC0 == 0 {
            guard let label = reader.readBytes(Int(length)) else { return false }
            if label.contains(UInt8(ascii: ".")) { return true }
        }
        return false
    }
}

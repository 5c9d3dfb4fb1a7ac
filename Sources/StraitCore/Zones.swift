/// An availability zone: a name (`us-east-1a`), its zone id, and the subnets that live in it.
public struct Zone: Sendable, Equatable, Codable {
    public let name: String
    public let id: String
    public let subnets: [Subnet]

    public init(name: String, id: String, subnets: [Subnet]) {
        self.name = name
        self.id = id
        self.subnets = subnets
    }
}

/// A subnet: an id and an IPv4 CIDR block whose addresses belong to one zone.
public struct Subnet: Sendable, Equatable, Codable {
    public let id: String
    public let cidr: IPv4CIDR

    public init(id: String, cidr: IPv4CIDR) {
        self.id = id
        self.cidr = cidr
    }
}

/// An IPv4 network: a base address and a prefix length.
public struct IPv4CIDR: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public let base: UInt32
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].count <= 2,
            parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            let length = Int(parts[1]), (0...32).contains(length),
            let address = IPv4CIDR.parseAddress(String(parts[0]))
        else { return nil }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
        guard address & ~mask == 0 else { return nil }
        self.base = address
        self.prefixLength = length
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = IPv4CIDR(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "bad CIDR \(text)")
            )
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { "\(IPv4CIDR.format(base))/\(prefixLength)" }

    /// How many addresses the block holds.
    public var size: UInt64 { UInt64(1) << UInt64(32 - prefixLength) }

    /// The address at `offset` from the base, or nil past the end of the block.
    public func address(at offset: UInt32) -> String? {
        guard UInt64(offset) < size else { return nil }
        return IPv4CIDR.format(base + offset)
    }

    public func contains(_ address: String) -> Bool {
        guard let value = IPv4CIDR.parseAddress(address) else { return false }
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength)
        return value & mask == base
    }

    public static func parseAddress(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                let byte = UInt8(octet)
            else {
                return nil
            }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    public static func format(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}

/// The zones a Strait server places instances in.
public struct ZoneLayout: Sendable, Equatable {
    public let zones: [Zone]

    public init(zones: [Zone]) { self.zones = zones }

    /// The embedded default: zones `<region>a`, `b` and `c` on 127.0.1.0/24, 127.0.2.0/24 and 127.0.3.0/24.
    public static func loopbackDefault(region: String) -> ZoneLayout {
        let zones = ["a", "b", "c"].enumerated().map { index, letter in
            let number = index + 1
            return Zone(
                name: region + letter,
                id: "\(ZoneLayout.regionCode(region))-az\(number)",
                subnets: [
                    Subnet(
                        id: "subnet-\(String(repeating: "0", count: 16))\(number)",
                        cidr: IPv4CIDR("127.0.\(number).0/24")!
                    )
                ]
            )
        }
        return ZoneLayout(zones: zones)
    }

    /// The zone that holds a subnet, by subnet id.
    public func zone(ofSubnet subnetID: String) -> Zone? {
        zones.first { zone in zone.subnets.contains { $0.id == subnetID } }
    }

    public func subnet(id: String) -> Subnet? {
        for zone in zones { if let subnet = zone.subnets.first(where: { $0.id == id }) { return subnet } }
        return nil
    }

    /// AWS's short region code used in zone ids: `us-east-1` → `use1`.
    static func regionCode(_ region: String) -> String {
        let parts = region.split(separator: "-")
        guard parts.count == 3 else { return region }
        let direction = parts[1]
        let short: String =
            switch direction {
            case "east": "e"
            case "west": "w"
            case "north": "n"
            case "south": "s"
            case "central": "c"
            case "northeast": "ne"
            case "southeast": "se"
            case "northwest": "nw"
            case "southwest": "sw"
            default: String(direction.prefix(1))
            }
        return "\(parts[0])\(short)\(parts[2])"
    }
}

extension IPv4CIDR {
    /// Whether the block holds the address (host order).
    public func contains(_ address: UInt32) -> Bool {
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength)
        return address & mask == base
    }

    /// Whether two blocks share an address.
    public func overlaps(_ other: IPv4CIDR) -> Bool {
        let shorter = min(prefixLength, other.prefixLength)
        let mask: UInt32 = shorter == 0 ? 0 : ~UInt32(0) << (32 - shorter)
        return base & mask == other.base & mask
    }

    /// Whether `other` lies wholly inside this block.
    public func covers(_ other: IPv4CIDR) -> Bool {
        other.prefixLength >= prefixLength && contains(other.base)
    }

    /// Parses `a.b.c.d/n`, clearing host bits as EC2 does (`10.0.0.18/16` → `10.0.0.0/16`).
    public static func canonical(_ text: String) -> IPv4CIDR? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = parseAddress(String(parts[0])),
            parts[1].count <= 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(parts[1]),
            (0...32).contains(length)
        else { return nil }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
        return IPv4CIDR("\(format(address & mask))/\(length)")
    }

    /// The smallest block holding all of `blocks`.
    public static func covering(_ blocks: [IPv4CIDR]) -> IPv4CIDR? {
        guard let first = blocks.first else { return nil }
        var length = blocks.map(\.prefixLength).min() ?? 32
        while length > 0 {
            let mask: UInt32 = ~UInt32(0) << (32 - length)
            if blocks.allSatisfy({ $0.base & mask == first.base & mask }) { break }
            length -= 1
        }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
        return IPv4CIDR("\(format(first.base & mask))/\(length)")
    }
}

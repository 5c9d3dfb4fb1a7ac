import Foundation
import StraitCore
import Testing

@Suite("IPv4CIDR")
struct IPv4CIDRTests {
    @Test(
        "parses a network address and prefix",
        arguments: [
            ("10.0.0.0/8", 0x0A00_0000, 8),
            ("127.0.1.0/24", 0x7F00_0100, 24),
            ("192.168.1.128/25", 0xC0A8_0180, 25),
            ("0.0.0.0/0", 0, 0),
            ("255.255.255.255/32", 0xFFFF_FFFF, 32),
            ("10.1.2.3/32", 0x0A01_0203, 32),
        ] as [(String, UInt32, Int)]
    )
    func parses(text: String, base: UInt32, prefix: Int) throws {
        let cidr = try #require(IPv4CIDR(text))
        #expect(cidr.base == base)
        #expect(cidr.prefixLength == prefix)
        #expect(cidr.description == text)
        #expect(cidr.size == UInt64(1) << UInt64(32 - prefix))
    }

    @Test(
        "rejects malformed blocks",
        arguments: [
            "10.0.0.1/8",  // host bits set
            "127.0.1.1/24",  // host bits set
            "192.168.1.64/25",  // host bits set
            "256.0.0.0/8",  // octet out of range
            "10.0.0.0/33",  // prefix > 32
            "10.0.0.0/-1",
            "10.0.0.0/",
            "10.0.0.0",
            "/8",
            "10.0.0/8",  // three octets
            "10.0.0.0.0/8",  // five octets
            "10..0.0/8",  // empty octet
            "10.0.0.a/8",
            "10.0.0.0/8/8",
            "10.0.0.0/a",
            "1000.0.0.0/8",
            "-1.0.0.0/8",
            "",
        ]
    )
    func rejects(text: String) {
        #expect(IPv4CIDR(text) == nil)
    }

    // Known bug: Zones.swift accepts a leading sign, because `UInt8("+10")`, `UInt8("-0")` and `Int("+8")` parse.
    @Test(
        "rejects a sign on an octet or on the prefix",
        arguments: ["+10.0.0.0/8", "10.+0.0.0/16", "-0.0.0.0/0", "10.0.0.0/+8"]
    )
    func rejectsSigns(text: String) {
        #expect(IPv4CIDR(text) == nil)
    }

    @Test("contains refuses a signed address")
    func containsRejectsSigns() throws {
        let cidr = try #require(IPv4CIDR("10.0.0.0/8"))
        #expect(!cidr.contains("+10.0.0.1"))
    }

    @Test("contains addresses inside the block only")
    func contains() throws {
        let cidr = try #require(IPv4CIDR("127.0.1.0/24"))
        for inside in ["127.0.1.0", "127.0.1.1", "127.0.1.255"] { #expect(cidr.contains(inside), "\(inside)") }
        for outside in ["127.0.2.0", "127.0.0.255", "10.0.1.1", "127.0.1", "127.0.1.256", "", "127.0.1.1/32"] {
            #expect(!cidr.contains(outside), "\(outside)")
        }
        let everything = try #require(IPv4CIDR("0.0.0.0/0"))
        #expect(everything.contains("255.255.255.255"))
        #expect(everything.contains("0.0.0.0"))
        let single = try #require(IPv4CIDR("10.1.2.3/32"))
        #expect(single.contains("10.1.2.3"))
        #expect(!single.contains("10.1.2.4"))
    }

    @Test("address(at:) counts from the base and stops at the end of the block")
    func addressAt() throws {
        let cidr = try #require(IPv4CIDR("127.0.1.0/24"))
        #expect(cidr.address(at: 0) == "127.0.1.0")
        #expect(cidr.address(at: 10) == "127.0.1.10")
        #expect(cidr.address(at: 255) == "127.0.1.255")
        #expect(cidr.address(at: 256) == nil)
        #expect(cidr.address(at: .max) == nil)

        let wide = try #require(IPv4CIDR("10.0.0.0/16"))
        #expect(wide.address(at: 256) == "10.0.1.0")
        #expect(wide.address(at: 65_535) == "10.0.255.255")
        #expect(wide.address(at: 65_536) == nil)

        let everything = try #require(IPv4CIDR("0.0.0.0/0"))
        #expect(everything.address(at: .max) == "255.255.255.255")
        let single = try #require(IPv4CIDR("10.1.2.3/32"))
        #expect(single.address(at: 0) == "10.1.2.3")
        #expect(single.address(at: 1) == nil)
    }

    @Test("encodes as its text form and refuses a bad one when decoding")
    func codable() throws {
        let cidr = try #require(IPv4CIDR("127.0.2.0/24"))
        let data = try JSONEncoder().encode([cidr])
        #expect(try JSONDecoder().decode([String].self, from: data) == ["127.0.2.0/24"])
        #expect(try JSONDecoder().decode([IPv4CIDR].self, from: data) == [cidr])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([IPv4CIDR].self, from: Data(#"["10.0.0.1/8"]"#.utf8))
        }
    }
}

@Suite("ZoneLayout")
struct ZoneLayoutTests {
    @Test("the loopback default has three zones on 127.0.1.0/24, 127.0.2.0/24 and 127.0.3.0/24")
    func loopbackDefault() throws {
        let layout = ZoneLayout.loopbackDefault(region: "us-east-1")
        #expect(layout.zones.map(\.name) == ["us-east-1a", "us-east-1b", "us-east-1c"])
        #expect(layout.zones.map(\.id) == ["use1-az1", "use1-az2", "use1-az3"])
        for (index, zone) in layout.zones.enumerated() {
            let subnet = try #require(zone.subnets.first)
            #expect(zone.subnets.count == 1)
            #expect(subnet.cidr == IPv4CIDR("127.0.\(index + 1).0/24"))
            #expect(layout.zone(ofSubnet: subnet.id) == zone)
            #expect(layout.subnet(id: subnet.id) == subnet)
        }
        #expect(Set(layout.zones.flatMap(\.subnets).map(\.id)).count == 3)
    }

    @Test("an unknown subnet is in no zone")
    func unknownSubnet() {
        let layout = ZoneLayout.loopbackDefault(region: "us-east-1")
        #expect(layout.zone(ofSubnet: "subnet-0123456789abcdef0") == nil)
        #expect(layout.subnet(id: "") == nil)
    }

    @Test(
        "zone ids use the region's short code",
        arguments: [
            ("us-west-2", "usw2"), ("eu-central-1", "euc1"), ("ap-southeast-1", "apse1"), ("ap-northeast-2", "apne2"),
            ("eu-north-1", "eun1"), ("sa-east-1", "sae1"),
        ] as [(String, String)]
    )
    func regionCodes(region: String, code: String) {
        let layout = ZoneLayout.loopbackDefault(region: region)
        #expect(layout.zones.map(\.name) == [region + "a", region + "b", region + "c"])
        #expect(layout.zones.map(\.id) == ["\(code)-az1", "\(code)-az2", "\(code)-az3"])
    }
}

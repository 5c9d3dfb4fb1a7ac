import Testing

@testable import StraitNetwork

@Suite("DNS resolver")
struct DNSResolverTests {
    static let runtimeName = "runtime.sagemaker.us-east-1.amazonaws.com"
    static let regionalName = "vpce-0abc123-x1y2z3.runtime.sagemaker.us-east-1.vpce.amazonaws.com"
    static let zonalName = "vpce-0abc123-x1y2z3-us-east-1a.runtime.sagemaker.us-east-1.vpce.amazonaws.com"

    /// 10.0.1.10 in subnet a and 10.0.2.10 in subnet b of vpc-1 (10.0.0.0/16).
    static let listenerA = DNSAddress(zone: "us-east-1a", address: 0x0A00_010A)
    static let listenerB = DNSAddress(zone: "us-east-1b", address: 0x0A00_020A)
    /// 10.1.1.10 in vpc-2's subnet in zone a.
    static let otherVPCListener = DNSAddress(zone: "us-east-1a", address: 0x0A01_010A)

    /// vpc-1 (10.0.0.0/16) with subnets in zones a and b and an interface endpoint with private DNS; vpc-2
    /// (10.1.0.0/16) with one subnet in zone a and no endpoint.
    static let snapshot = DNSSnapshot(
        subnets: [
            DNSNetwork(base: 0x0A00_0100, prefixLength: 24, vpcID: "vpc-1", zone: "us-east-1a"),
            DNSNetwork(base: 0x0A00_0200, prefixLength: 24, vpcID: "vpc-1", zone: "us-east-1b"),
            DNSNetwork(base: 0x0A01_0100, prefixLength: 24, vpcID: "vpc-2", zone: "us-east-1a"),
        ],
        vpcs: [
            DNSNetwork(base: 0x0A00_0000, prefixLength: 16, vpcID: "vpc-1", zone: nil),
            DNSNetwork(base: 0x0A01_0000, prefixLength: 16, vpcID: "vpc-2", zone: nil),
        ],
        names: [
            runtimeName: [DNSTarget(vpcID: "vpc-1", addresses: [listenerA, listenerB])],
            regionalName: [DNSTarget(vpcID: nil, addresses: [listenerA, listenerB])],
            zonalName: [DNSTarget(vpcID: nil, addresses: [listenerA])],
        ],
        ttl: 60
    )

    /// Client addresses.
    static let inSubnetA: UInt32 = 0x0A00_0132  // 10.0.1.50
    static let inSubnetB: UInt32 = 0x0A00_0232  // 10.0.2.50
    static let inVPCOutsideSubnets: UInt32 = 0x0A00_C805  // 10.0.200.5
    static let inOtherVPC: UInt32 = 0x0A01_0105  // 10.1.1.5
    static let outsideEveryVPC: UInt32 = 0xC0A8_0101  // 192.168.1.1

    func ask(
        _ name: String,
        type: UInt16 = 1,
        qclass: UInt16 = 1,
        from source: UInt32?,
        snapshot: DNSSnapshot = DNSResolverTests.snapshot,
        maxSize: Int = 512
    ) throws -> ParsedDNSResponse {
        let query = try DNSTestWire.parse(DNSTestWire.query(name, type: type, qclass: qclass))
        let bytes = DNSResolver.answer(query, source: source, snapshot: snapshot, maxSize: maxSize)
        let response = try ParsedDNSResponse(bytes, questionLength: query.questionBytes.count)
        #expect(response.id == query.id)
        #expect(response.question == query.questionBytes)
        return response
    }

    @Test("dig's query from zone a, byte for byte")
    func digQueryExactly() throws {
        let query = try DNSTestWire.parse(DNSTestWire.digQuery)
        let response = DNSResolver.answer(
            query,
            source: Self.inSubnetA,
            snapshot: Self.snapshot,
            maxSize: DNSMessage.udpResponseLimit(for: query)
        )
        let expected: [UInt8] =
            [0xA1, 0x5E, 0x85, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01]
            + Array(DNSTestWire.digQuery[12..<59])
            + [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x04, 0x0A, 0x00, 0x01, 0x0A]
            + [0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        #expect(response == expected)
    }

    @Test("a client in zone a's subnet gets only zone a's listener; zone b's only zone b's")
    func zoneChoice() throws {
        let fromA = try ask(Self.runtimeName, from: Self.inSubnetA)
        #expect(fromA.rcode == DNSRcode.noError)
        #expect(fromA.isAuthoritative)
        #expect(fromA.addresses == [Self.listenerA.address])
        #expect(fromA.answers.map(\.ttl) == [60])
        #expect(try ask(Self.runtimeName, from: Self.inSubnetB).addresses == [Self.listenerB.address])
    }

    @Test("a client in the VPC but in no subnet gets every listener")
    func inVPCNoSubnet() throws {
        let response = try ask(Self.runtimeName, from: Self.inVPCOutsideSubnets)
        #expect(response.addresses == [Self.listenerA.address, Self.listenerB.address])
    }

    @Test("a client in another VPC does not get the private DNS name, but does get the vpce names")
    func otherVPC() throws {
        let privateName = try ask(Self.runtimeName, from: Self.inOtherVPC)
        #expect(privateName.rcode == DNSRcode.noError)
        #expect(privateName.isAuthoritative)
        #expect(privateName.answers.isEmpty)

        // The other VPC's subnet is in zone a too, so the regional name narrows to zone a's listener.
        #expect(try ask(Self.regionalName, from: Self.inOtherVPC).addresses == [Self.listenerA.address])
        #expect(try ask(Self.zonalName, from: Self.inOtherVPC).addresses == [Self.listenerA.address])
    }

    @Test("a client in no VPC, or of unknown address, gets the private DNS name with every listener")
    func noVPC() throws {
        for source in [Self.outsideEveryVPC, nil] {
            let response = try ask(Self.runtimeName, from: source)
            #expect(response.rcode == DNSRcode.noError)
            #expect(response.addresses == [Self.listenerA.address, Self.listenerB.address])
        }
    }

    @Test("a zonal name answers its zone's listener even to a client in another zone")
    func zonalNameFromOtherZone() throws {
        #expect(try ask(Self.zonalName, from: Self.inSubnetB).addresses == [Self.listenerA.address])
    }

    @Test("targets are merged without duplicates, in order, and a VPC's own target wins over other VPCs'")
    func mergedTargets() throws {
        var snapshot = Self.snapshot
        snapshot.names[Self.runtimeName] = [
            DNSTarget(vpcID: "vpc-1", addresses: [Self.listenerA, Self.listenerB]),
            DNSTarget(vpcID: "vpc-2", addresses: [Self.otherVPCListener]),
            DNSTarget(vpcID: nil, addresses: [Self.listenerB]),
        ]
        let fromOtherVPC = try ask(Self.runtimeName, from: Self.inOtherVPC, snapshot: snapshot)
        #expect(fromOtherVPC.addresses == [Self.otherVPCListener.address])
        let fromSubnetA = try ask(Self.runtimeName, from: Self.inSubnetA, snapshot: snapshot)
        #expect(fromSubnetA.addresses == [Self.listenerA.address])
        let fromOutside = try ask(Self.runtimeName, from: Self.outsideEveryVPC, snapshot: snapshot)
        let everyListener = [Self.listenerA, Self.listenerB, Self.otherVPCListener].map(\.address)
        #expect(fromOutside.addresses == everyListener)
    }

    @Test("a 0x20 mixed-case name is found and its question echoed verbatim")
    func mixedCase() throws {
        let name = "RuNtImE.sAgEmAkEr.Us-EaSt-1.aMaZoNaWs.CoM"
        let response = try ask(name, from: Self.inSubnetA)
        #expect(response.question == DNSTestWire.question(name))
        #expect(response.addresses == [Self.listenerA.address])
    }

    @Test("AAAA and other types get NOERROR with no records (NODATA); ANY gets the A records")
    func types() throws {
        for type: UInt16 in [28, 5, 15, 16, 33] {
            let response = try ask(Self.runtimeName, type: type, from: Self.inSubnetA)
            #expect(response.rcode == DNSRcode.noError)
            #expect(response.isAuthoritative)
            #expect(response.counts == [1, 0, 0, 0])
        }
        #expect(try ask(Self.runtimeName, type: 255, from: Self.inSubnetA).addresses == [Self.listenerA.address])
    }

    @Test("class ANY is answered; other classes are refused")
    func classes() throws {
        #expect(try ask(Self.runtimeName, qclass: 255, from: Self.inSubnetA).addresses == [Self.listenerA.address])
        for qclass: UInt16 in [3, 4, 254] {
            let response = try ask(Self.runtimeName, qclass: qclass, from: Self.inSubnetA)
            #expect(response.rcode == DNSRcode.refused)
            #expect(!response.isAuthoritative)
            #expect(response.answers.isEmpty)
        }
    }

    @Test("names Strait is not authoritative for are refused, not authoritative")
    func unknownName() throws {
        for name in ["example.com", "sagemaker.us-east-1.amazonaws.com", "x." + Self.runtimeName, ""] {
            let response = try ask(name, from: Self.inSubnetA)
            #expect(response.rcode == DNSRcode.refused)
            #expect(!response.isAuthoritative)
            #expect(response.counts == [1, 0, 0, 0])
            #expect(response.flags == 0x8105)  // QR, RD copied, REFUSED
        }
        #expect(try ask(Self.runtimeName, from: Self.inSubnetA, snapshot: .empty).rcode == DNSRcode.refused)
    }

    @Test("a label holding a dot does not pass for two labels")
    func dotInsideLabel() throws {
        // "runtime.sagemaker" as one label, then us-east-1, amazonaws, com.
        let first = Array("runtime.sagemaker".utf8)
        let bytes =
            DNSTestWire.header() + [UInt8(first.count)] + first
            + DNSTestWire.name("us-east-1.amazonaws.com") + DNSTestWire.be16(1) + DNSTestWire.be16(1)
        let query = try DNSTestWire.parse(bytes)
        #expect(query.name == Array(Self.runtimeName.utf8))
        let answer = DNSResolver.resolve(query, source: Self.inSubnetA, snapshot: Self.snapshot)
        #expect(answer == .refused)
    }

    @Test("a name with non-ASCII bytes is refused, even when the snapshot holds a name that reads alike")
    func nonASCII() throws {
        let target = DNSTarget(vpcID: nil, addresses: [Self.listenerA])
        let snapshot = DNSSnapshot(subnets: [], vpcs: [], names: ["\u{FFFD}.com": [target], "é.com": [target]])
        for label: [UInt8] in [[0xFF], [0xC3, 0xA9]] {
            let bytes =
                DNSTestWire.header() + [UInt8(label.count)] + label + DNSTestWire.name("com")
                + DNSTestWire.be16(1) + DNSTestWire.be16(1)
            let query = try DNSTestWire.parse(bytes)
            #expect(DNSResolver.resolve(query, source: nil, snapshot: snapshot) == .refused)
        }
    }

    @Test("the snapshot's keys are lowercased and lose a trailing dot")
    func snapshotKeys() throws {
        let target = DNSTarget(vpcID: nil, addresses: [Self.listenerA])
        let snapshot = DNSSnapshot(
            subnets: [],
            vpcs: [],
            names: ["Runtime.SageMaker.US-EAST-1.amazonaws.com.": [target]],
            ttl: 5
        )
        #expect(Array(snapshot.names.keys) == [Self.runtimeName])
        let response = try ask(Self.runtimeName, from: nil, snapshot: snapshot)
        #expect(response.addresses == [Self.listenerA.address])
        #expect(response.answers.map(\.ttl) == [5])
    }

    @Test("a client is placed by the longest matching prefix")
    func longestPrefix() {
        let snapshot = DNSSnapshot(
            subnets: [
                DNSNetwork(base: 0x0A00_0000, prefixLength: 16, vpcID: "vpc-1", zone: "us-east-1a"),
                DNSNetwork(base: 0x0A00_0100, prefixLength: 24, vpcID: "vpc-1", zone: "us-east-1b"),
                DNSNetwork(base: 0x0A00_0100, prefixLength: 40, vpcID: "vpc-bad", zone: "bad"),
            ],
            vpcs: [
                DNSNetwork(base: 0x0A00_0000, prefixLength: 8, vpcID: "vpc-big", zone: nil),
                DNSNetwork(base: 0x0A10_0000, prefixLength: 12, vpcID: "vpc-small", zone: nil),
            ],
            names: [:]
        )
        #expect(DNSResolver.locate(0x0A00_0105, in: snapshot) == DNSClientLocation(vpcID: "vpc-1", zone: "us-east-1b"))
        #expect(DNSResolver.locate(0x0A00_0205, in: snapshot) == DNSClientLocation(vpcID: "vpc-1", zone: "us-east-1a"))
        #expect(DNSResolver.locate(0x0A10_0001, in: snapshot) == DNSClientLocation(vpcID: "vpc-small", zone: nil))
        #expect(DNSResolver.locate(0x0A20_0001, in: snapshot) == DNSClientLocation(vpcID: "vpc-big", zone: nil))
        #expect(DNSResolver.locate(0x0B00_0001, in: snapshot) == DNSClientLocation())
        #expect(DNSResolver.locate(nil, in: snapshot) == DNSClientLocation())
    }

    @Test("network containment, including /0, /32 and out-of-range prefixes")
    func containment() {
        #expect(DNSNetwork(base: 0, prefixLength: 0, vpcID: "v", zone: nil).contains(0xFFFF_FFFF))
        #expect(DNSNetwork(base: 0x0A00_0001, prefixLength: 32, vpcID: "v", zone: nil).contains(0x0A00_0001))
        #expect(!DNSNetwork(base: 0x0A00_0001, prefixLength: 32, vpcID: "v", zone: nil).contains(0x0A00_0002))
        #expect(DNSNetwork(base: 0x0A00_0105, prefixLength: 24, vpcID: "v", zone: nil).contains(0x0A00_01FF))
        #expect(!DNSNetwork(base: 0x0A00_0000, prefixLength: 24, vpcID: "v", zone: nil).contains(0x0A00_0100))
        #expect(!DNSNetwork(base: 0, prefixLength: -1, vpcID: "v", zone: nil).contains(0))
        #expect(!DNSNetwork(base: 0, prefixLength: 33, vpcID: "v", zone: nil).contains(0))
    }

    @Test("a name with more listeners than fit in 512 bytes is truncated with TC; over TCP all are sent")
    func truncation() throws {
        let addresses = (0..<100).map { DNSAddress(zone: "us-east-1a", address: 0x0A00_0100 + UInt32($0)) }
        var snapshot = Self.snapshot
        snapshot.names[Self.regionalName] = [DNSTarget(vpcID: nil, addresses: addresses)]
        let udp = try ask(Self.regionalName, from: Self.outsideEveryVPC, snapshot: snapshot)
        #expect(udp.isTruncated)
        #expect(udp.rcode == DNSRcode.noError)
        #expect(udp.addresses == Array(addresses.map(\.address).prefix(udp.answers.count)))
        #expect(udp.answers.count == (512 - 12 - DNSTestWire.question(Self.regionalName).count) / 16)

        let tcp = try ask(
            Self.regionalName,
            from: Self.outsideEveryVPC,
            snapshot: snapshot,
            maxSize: DNSMessage.tcpResponseLimit
        )
        #expect(!tcp.isTruncated)
        #expect(tcp.addresses == addresses.map(\.address))
    }

    @Test("with EDNS, the answer carries Strait's OPT record")
    func ednsEchoed() throws {
        let query = try DNSTestWire.parse(DNSTestWire.query(Self.runtimeName, ednsSize: 4096))
        let bytes = DNSResolver.answer(
            query,
            source: Self.inSubnetB,
            snapshot: Self.snapshot,
            maxSize: DNSMessage.udpResponseLimit(for: query)
        )
        let response = try ParsedDNSResponse(bytes, questionLength: query.questionBytes.count)
        #expect(response.counts == [1, 1, 0, 1])
        #expect(response.addresses == [Self.listenerB.address])
        #expect(response.rest == [0, 0x00, 0x29, 0x04, 0xD0, 0, 0, 0, 0, 0, 0])
    }
}

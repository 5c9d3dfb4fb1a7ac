import Testing

@testable import StraitNetwork

/// Builds DNS messages by hand, byte by byte, for the DNS tests.
enum DNSTestWire {
    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xFFFF)) }

    static func header(
        id: UInt16 = 0x1234,
        flags: UInt16 = 0x0100,
        qdcount: UInt16 = 1,
        ancount: UInt16 = 0,
        nscount: UInt16 = 0,
        arcount: UInt16 = 0
    ) -> [UInt8] {
        be16(id) + be16(flags) + be16(qdcount) + be16(ancount) + be16(nscount) + be16(arcount)
    }

    /// `text` in wire form: length-prefixed labels and the terminating zero.
    static func name(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in text.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out += Array(label.utf8)
        }
        return out + [0]
    }

    static func question(_ text: String, type: UInt16 = 1, qclass: UInt16 = 1) -> [UInt8] {
        name(text) + be16(type) + be16(qclass)
    }

    /// An OPT record for the root with `udpSize` and raw option bytes.
    static func opt(udpSize: UInt16 = 1232, options: [UInt8] = []) -> [UInt8] {
        [0] + be16(41) + be16(udpSize) + be32(0) + be16(UInt16(options.count)) + options
    }

    /// A whole query for `text`, with an OPT record when `ednsSize` is set.
    static func query(
        _ text: String,
        id: UInt16 = 0x1234,
        type: UInt16 = 1,
        qclass: UInt16 = 1,
        ednsSize: UInt16? = nil
    ) -> [UInt8] {
        let additional = ednsSize.map { opt(udpSize: $0) } ?? []
        return header(id: id, arcount: ednsSize == nil ? 0 : 1) + question(text, type: type, qclass: qclass)
            + additional
    }

    /// What `dig runtime.sagemaker.us-east-1.amazonaws.com` (BIND 9.18) sends: RD and AD set, EDNS with a UDP size
    /// of 1232 and an 8-byte client cookie.
    static let digQuery: [UInt8] =
        [
            0xA1, 0x5E,  // ID
            0x01, 0x20,  // RD, AD
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // QD 1, AN 0, NS 0, AR 1
            7, 0x72, 0x75, 0x6E, 0x74, 0x69, 0x6D, 0x65,  // runtime
            9, 0x73, 0x61, 0x67, 0x65, 0x6D, 0x61, 0x6B, 0x65, 0x72,  // sagemaker
            9, 0x75, 0x73, 0x2D, 0x65, 0x61, 0x73, 0x74, 0x2D, 0x31,  // us-east-1
            9, 0x61, 0x6D, 0x61, 0x7A, 0x6F, 0x6E, 0x61, 0x77, 0x73,  // amazonaws
            3, 0x63, 0x6F, 0x6D, 0,  // com, root
            0x00, 0x01, 0x00, 0x01,  // QTYPE A, QCLASS IN
            0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C,  // OPT, 1232, RDLENGTH 12
            0x00, 0x0A, 0x00, 0x08, 0x3B, 0x9C, 0x1E, 0x55, 0x0D, 0x72, 0x4A, 0x19,  // COOKIE, 8 bytes
        ]

    static func parse(_ bytes: [UInt8]) throws -> DNSQuery {
        try DNSMessage.parseQuery(bytes).get()
    }

    static func failure(_ bytes: [UInt8]) -> DNSParseFailure? {
        if case .failure(let failure) = DNSMessage.parseQuery(bytes) { return failure }
        return nil
    }
}

/// A response taken apart, assuming Strait's layout: header, the echoed question, A records, then the rest.
struct ParsedDNSResponse {
    var id: UInt16
    var flags: UInt16
    var counts: [UInt16]
    var question: [UInt8]
    var answers: [(ttl: UInt32, address: UInt32)]
    var rest: [UInt8]

    var rcode: UInt8 { UInt8(flags & 0x0F) }
    var isAuthoritative: Bool { flags & 0x0400 != 0 }
    var isTruncated: Bool { flags & 0x0200 != 0 }
    var addresses: [UInt32] { answers.map(\.address) }

    init(_ bytes: [UInt8], questionLength: Int) throws {
        try #require(bytes.count >= 12 + questionLength)
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) << 16 | UInt32(u16(at + 2)) }
        id = u16(0)
        flags = u16(2)
        counts = [u16(4), u16(6), u16(8), u16(10)]
        question = Array(bytes[12..<12 + questionLength])
        var offset = 12 + questionLength
        answers = []
        for _ in 0..<Int(counts[1]) {
            try #require(bytes.count >= offset + 16)
            #expect(Array(bytes[offset..<offset + 6]) == [0xC0, 0x0C, 0, 1, 0, 1])
            #expect(u16(offset + 10) == 4)
            answers.append((ttl: u32(offset + 6), address: u32(offset + 12)))
            offset += 16
        }
        rest = Array(bytes[offset...])
    }
}

@Suite("DNS message")
struct DNSMessageTests {
    /// 10.0.1.5.
    let address: UInt32 = 0x0A00_0105

    @Test("dig's query parses into its fields")
    func parsesDigQuery() throws {
        let query = try DNSTestWire.parse(DNSTestWire.digQuery)
        #expect(query.id == 0xA15E)
        #expect(query.flags == 0x0120)
        #expect(query.name == Array("runtime.sagemaker.us-east-1.amazonaws.com".utf8))
        #expect(query.type == 1)
        #expect(query.qclass == 1)
        #expect(query.questionBytes == Array(DNSTestWire.digQuery[12..<59]))
        #expect(query.hasEDNS)
        #expect(query.ednsUDPSize == 1232)
        #expect(DNSMessage.udpResponseLimit(for: query) == 1232)
    }

    @Test("the answer to dig's query, byte for byte")
    func answersDigQueryExactly() throws {
        let query = try DNSTestWire.parse(DNSTestWire.digQuery)
        let response = DNSMessage.response(
            to: query,
            rcode: DNSRcode.noError,
            answers: [address],
            ttl: 60,
            authoritative: true,
            maxSize: DNSMessage.udpResponseLimit(for: query)
        )
        let expected: [UInt8] =
            [
                0xA1, 0x5E,  // ID
                0x85, 0x00,  // QR, AA, RD; opcode 0, RA 0, AD not copied, NOERROR
                0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,  // QD 1, AN 1, NS 0, AR 1
            ] + Array(DNSTestWire.digQuery[12..<59])
            + [
                0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01,  // pointer to the question, A, IN
                0x00, 0x00, 0x00, 0x3C, 0x00, 0x04, 0x0A, 0x00, 0x01, 0x05,  // TTL 60, RDLENGTH 4, 10.0.1.5
                0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // OPT, 1232, no options
            ]
        #expect(response == expected)
    }

    @Test("a 0x20 mixed-case question is parsed with its case and echoed verbatim")
    func mixedCaseEchoed() throws {
        let bytes = DNSTestWire.query("RuNtImE.SaGeMaKeR.uS-EaSt-1.AmAzOnAwS.CoM")
        let query = try DNSTestWire.parse(bytes)
        #expect(query.name == Array("RuNtImE.SaGeMaKeR.uS-EaSt-1.AmAzOnAwS.CoM".utf8))
        let response = DNSMessage.response(
            to: query,
            rcode: 0,
            answers: [address],
            ttl: 5,
            authoritative: true,
            maxSize: 512
        )
        #expect(Array(response[12..<bytes.count]) == Array(bytes[12...]))
    }

    @Test("without EDNS there is no OPT record; with it, Strait's own OPT is appended and counted")
    func ednsOPT() throws {
        let plain = try DNSTestWire.parse(DNSTestWire.query("a.example"))
        #expect(!plain.hasEDNS)
        #expect(plain.ednsUDPSize == nil)
        let plainResponse = try ParsedDNSResponse(
            DNSMessage.response(to: plain, rcode: 0, answers: [address], ttl: 1, authoritative: true, maxSize: 512),
            questionLength: plain.questionBytes.count
        )
        #expect(plainResponse.counts == [1, 1, 0, 0])
        #expect(plainResponse.rest.isEmpty)

        let edns = try DNSTestWire.parse(DNSTestWire.query("a.example", ednsSize: 4096))
        #expect(edns.ednsUDPSize == 4096)
        let ednsResponse = try ParsedDNSResponse(
            DNSMessage.response(to: edns, rcode: 0, answers: [address], ttl: 1, authoritative: true, maxSize: 1232),
            questionLength: edns.questionBytes.count
        )
        #expect(ednsResponse.counts == [1, 1, 0, 1])
        #expect(ednsResponse.rest == [0, 0x00, 0x29, 0x04, 0xD0, 0, 0, 0, 0, 0, 0])
    }

    @Test("the UDP limit is 512 without EDNS and the requestor's size clamped to 512...1232 with it")
    func udpLimit() throws {
        let sizes: [(UInt16?, Int)] = [(nil, 512), (100, 512), (512, 512), (1000, 1000), (1232, 1232), (4096, 1232)]
        for (size, limit) in sizes {
            let query = try DNSTestWire.parse(DNSTestWire.query("a.example", ednsSize: size))
            #expect(DNSMessage.udpResponseLimit(for: query) == limit)
        }
        #expect(DNSMessage.tcpResponseLimit == 65_535)
    }

    @Test("answers that do not fit are dropped whole and TC is set")
    func truncation() throws {
        let query = try DNSTestWire.parse(DNSTestWire.query("a.example"))
        let answers = (0..<100).map { UInt32(0x0A00_0000) + UInt32($0) }
        let bytes = DNSMessage.response(
            to: query,
            rcode: 0,
            answers: answers,
            ttl: 60,
            authoritative: true,
            maxSize: 512
        )
        #expect(bytes.count <= 512)
        let parsed = try ParsedDNSResponse(bytes, questionLength: query.questionBytes.count)
        let fitting = (512 - 12 - query.questionBytes.count) / 16
        #expect(parsed.isTruncated)
        #expect(parsed.counts == [1, UInt16(fitting), 0, 0])
        #expect(parsed.addresses == Array(answers.prefix(fitting)))
        #expect(parsed.rest.isEmpty)

        let whole = DNSMessage.response(
            to: query,
            rcode: 0,
            answers: answers,
            ttl: 60,
            authoritative: true,
            maxSize: DNSMessage.tcpResponseLimit
        )
        let all = try ParsedDNSResponse(whole, questionLength: query.questionBytes.count)
        #expect(!all.isTruncated)
        #expect(all.addresses == answers)
    }

    @Test("truncation keeps the OPT record, and exactly-fitting answers are not truncated")
    func truncationWithEDNS() throws {
        let query = try DNSTestWire.parse(DNSTestWire.query("a.example", ednsSize: 1232))
        let fixed = 12 + query.questionBytes.count + 11
        let answers = (0..<3).map { UInt32($0) }
        let exact = DNSMessage.response(
            to: query,
            rcode: 0,
            answers: answers,
            ttl: 1,
            authoritative: true,
            maxSize: fixed + 3 * 16
        )
        #expect(exact.count == fixed + 3 * 16)
        #expect(try !ParsedDNSResponse(exact, questionLength: query.questionBytes.count).isTruncated)

        let short = DNSMessage.response(
            to: query,
            rcode: 0,
            answers: answers,
            ttl: 1,
            authoritative: true,
            maxSize: fixed + 3 * 16 - 1
        )
        let parsed = try ParsedDNSResponse(short, questionLength: query.questionBytes.count)
        #expect(parsed.isTruncated)
        #expect(parsed.counts == [1, 2, 0, 1])
        #expect(parsed.rest.count == 11)

        let tiny = DNSMessage.response(to: query, rcode: 0, answers: answers, ttl: 1, authoritative: true, maxSize: -5)
        #expect(try ParsedDNSResponse(tiny, questionLength: query.questionBytes.count).counts == [1, 0, 0, 1])
    }

    @Test("a hand-made query without question bytes is answered with a bare header")
    func noQuestionBytes() {
        let query = DNSQuery(
            id: 9,
            flags: 0x0100,
            name: [],
            type: 1,
            qclass: 1,
            questionBytes: [],
            hasEDNS: false,
            ednsUDPSize: nil
        )
        let response = DNSMessage.response(
            to: query,
            rcode: DNSRcode.noError,
            answers: [address],
            ttl: 1,
            authoritative: true,
            maxSize: 512
        )
        #expect(response == [0, 9, 0x85, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("error responses are a header: the ID, QR, the opcode and RD copied, the rcode")
    func errorResponse() {
        #expect(
            DNSMessage.errorResponse(id: 0xBEEF, flags: 0x0120, rcode: DNSRcode.formErr)
                == [0xBE, 0xEF, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
        )
        #expect(
            DNSMessage.errorResponse(id: 7, flags: 0x1100, rcode: DNSRcode.notImp)
                == [0x00, 0x07, 0x91, 0x04, 0, 0, 0, 0, 0, 0, 0, 0]
        )
    }

    @Test("the rcode constants")
    func rcodes() {
        let codes = [DNSRcode.noError, DNSRcode.formErr, DNSRcode.servFail, DNSRcode.nxDomain, DNSRcode.notImp]
        #expect(codes + [DNSRcode.refused] == [0, 1, 2, 3, 4, 5])
    }

    @Test("a name of exactly 255 bytes with labels of 63 is accepted")
    func longestName() throws {
        let label63 = String(repeating: "a", count: 63)
        let label61 = String(repeating: "b", count: 61)
        let text = [label63, label63, label63, label61].joined(separator: ".")
        #expect(DNSTestWire.name(text).count == 255)
        let query = try DNSTestWire.parse(DNSTestWire.query(text))
        #expect(query.name == Array(text.utf8))
    }

    @Test("the root name parses as an empty name")
    func rootName() throws {
        let query = try DNSTestWire.parse(DNSTestWire.header() + [0, 0, 2, 0, 1])
        #expect(query.name.isEmpty)
        #expect(query.type == 2)
    }

    @Test("messages shorter than a header, and responses, are dropped")
    func dropped() {
        for bytes in [[], Array(repeating: UInt8(0), count: 11), DNSTestWire.header(flags: 0x8100)] {
            let failure = DNSTestWire.failure(bytes)
            #expect(failure != nil)
            #expect(failure?.id == nil)
            #expect(failure?.rcode == nil)
            #expect(failure?.reply == nil)
        }
        let response = DNSTestWire.header(flags: 0x8000) + DNSTestWire.question("a.example")
        #expect(DNSTestWire.failure(response)?.id == nil)
    }

    @Test("an opcode other than QUERY gets NOTIMP")
    func notImplemented() throws {
        for opcode: UInt16 in [1, 2, 4, 5, 15] {
            let bytes = DNSTestWire.header(id: 0x0102, flags: opcode << 11 | 0x0100) + DNSTestWire.question("a.b")
            let failure = try #require(DNSTestWire.failure(bytes))
            #expect(failure.notImplemented)
            #expect(failure.id == 0x0102)
            #expect(failure.rcode == DNSRcode.notImp)
            let flags = 0x8104 | opcode << 11
            #expect(failure.reply == [0x01, 0x02, UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 0, 0, 0, 0, 0, 0, 0])
        }
    }

    /// Queries that must get FORMERR, with what is wrong with them.
    static func malformedQueries() -> [(String, [UInt8])] {
        typealias W = DNSTestWire
        let question: [UInt8] = W.question("a.b")
        let label63 = String(repeating: "a", count: 63)
        let aRecord: [UInt8] = [0] + W.be16(1) + W.be16(1) + W.be32(0) + W.be16(4) + [10, 0, 0, 0]
        let optForName: [UInt8] = W.name("x") + Array(W.opt().dropFirst())
        let optCut: [UInt8] = Array((W.header(arcount: 1) + question + W.opt()).dropLast())
        let optDataCut: [UInt8] = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 4, 0, 10]
        let optOverrun: [UInt8] = W.opt(options: [0, 10, 0, 8, 1, 2])
        var cases: [(String, [UInt8])] = []
        cases.append(("QDCOUNT 0", W.header(qdcount: 0)))
        cases.append(("QDCOUNT 0 with a question", W.header(qdcount: 0) + question))
        cases.append(("QDCOUNT 2", W.header(qdcount: 2) + question + W.question("c.d")))
        cases.append(("QDCOUNT 2, one question", W.header(qdcount: 2) + question))
        cases.append(("ANCOUNT 1", W.header(ancount: 1) + question))
        cases.append(("NSCOUNT 1", W.header(nscount: 1) + question))
        cases.append(("ARCOUNT 2", W.header(arcount: 2) + question + W.opt() + W.opt()))
        cases.append(("ARCOUNT 2, nothing there", W.header(arcount: 2) + question))
        cases.append(("compression pointer", W.header() + [1, 0x61, 0xC0, 0x0C, 0, 1, 0, 1]))
        cases.append(("pointer as the whole name", W.header() + [0xC0, 0x0C, 0, 1, 0, 1]))
        cases.append(("extended label type", W.header() + [0x41, 0, 0, 1, 0, 1]))
        cases.append(("label of 64", W.query(String(repeating: "x", count: 64) + ".com")))
        cases.append(("name over 255", W.query([label63, label63, label63, label63].joined(separator: "."))))
        let label62 = String(label63.dropLast())
        cases.append(("name of 256", W.query([label63, label63, label63, label62].joined(separator: "."))))
        cases.append(("question cut in the name", Array(W.query("a.example").prefix(16))))
        cases.append(("question cut before QTYPE", W.header() + W.name("a.example")))
        cases.append(("question cut in QCLASS", Array(W.query("a.example").dropLast())))
        cases.append(("trailing garbage", W.query("a.example") + [0xDE, 0xAD]))
        cases.append(("trailing garbage after OPT", W.query("a.example", ednsSize: 1232) + [0]))
        cases.append(("ARCOUNT 1, an A record", W.header(arcount: 1) + question + aRecord))
        cases.append(("ARCOUNT 1, OPT not for the root", W.header(arcount: 1) + question + optForName))
        cases.append(("ARCOUNT 1, OPT owner not zero", W.header(arcount: 1) + question + [1] + W.opt().dropFirst()))
        cases.append(("ARCOUNT 1, nothing there", W.header(arcount: 1) + question))
        cases.append(("OPT cut", optCut))
        cases.append(("OPT data cut", W.header(arcount: 1) + question + optDataCut))
        cases.append(("OPT option overruns", W.header(arcount: 1) + question + optOverrun))
        cases.append(("OPT option data missing", W.header(arcount: 1) + question + W.opt(options: [0, 10, 0, 8])))
        cases.append(("OPT option header cut", W.header(arcount: 1) + question + W.opt(options: [0, 10, 0])))
        return cases
    }

    @Test("malformed queries get FORMERR", arguments: DNSMessageTests.malformedQueries())
    func formatErrors(reason: String, bytes: [UInt8]) throws {
        let failure = try #require(DNSTestWire.failure(bytes), "\(reason) was accepted")
        #expect(failure.id == 0x1234, "\(reason)")
        #expect(!failure.notImplemented, "\(reason)")
        #expect(failure.rcode == DNSRcode.formErr, "\(reason)")
        #expect(failure.reply == [0x12, 0x34, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], "\(reason)")
    }

    @Test("a compression pointer in the question is refused as such, wherever it is in the name")
    func compressionPointer() throws {
        for name: [UInt8] in [[0xC0, 0x0C], [1, 0x61, 0xC0, 0x0C], [1, 0x61, 0xFF, 0xFF]] {
            let failure = try #require(DNSTestWire.failure(DNSTestWire.header() + name + [0, 1, 0, 1]))
            #expect(failure.rcode == DNSRcode.formErr)
            #expect(failure.reason.contains("compression pointer"))
        }
    }

    @Test("an OPT record with well-formed options is accepted")
    func optWithOptions() throws {
        let bytes =
            DNSTestWire.header(arcount: 1) + DNSTestWire.question("a.b")
            + DNSTestWire.opt(udpSize: 1400, options: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 0])
        let query = try DNSTestWire.parse(bytes)
        #expect(query.ednsUDPSize == 1400)
    }

    @Test("a message over 65535 bytes is refused with FORMERR, even when well formed")
    func oversized() throws {
        /// A query for the root whose OPT record carries one option of `length` bytes.
        func query(optionLength: Int) -> [UInt8] {
            let option = DNSTestWire.be16(0xFF00) + DNSTestWire.be16(UInt16(optionLength))
            return DNSTestWire.header(arcount: 1) + [0, 0, 1, 0, 1]
                + DNSTestWire.opt(options: option + Array(repeating: 0, count: optionLength))
        }
        let largest = query(optionLength: 65_503)
        #expect(largest.count == 65_535)
        #expect(try DNSTestWire.parse(largest).ednsUDPSize == 1232)

        let oversized = query(optionLength: 65_504)
        #expect(oversized.count == 65_536)
        let failure = try #require(DNSTestWire.failure(oversized))
        #expect(failure.rcode == DNSRcode.formErr)
    }

    @Test("10,000 random, truncated and mutated messages never trap and keep the invariants")
    func fuzz() throws {
        var random = SplitMix64(seed: 0x5EED_D0D0)
        let seeds: [[UInt8]] = [
            DNSTestWire.digQuery,
            DNSTestWire.query("runtime.sagemaker.us-east-1.amazonaws.com"),
            DNSTestWire.query("a.example", type: 28, ednsSize: 512),
            DNSTestWire.header(arcount: 1) + DNSTestWire.question("x.y")
                + DNSTestWire.opt(options: [0, 10, 0, 2, 1, 2]),
        ]
        let snapshot = DNSSnapshot(
            subnets: [DNSNetwork(base: 0x0A00_0100, prefixLength: 24, vpcID: "vpc-1", zone: "us-east-1a")],
            vpcs: [DNSNetwork(base: 0x0A00_0000, prefixLength: 16, vpcID: "vpc-1", zone: nil)],
            names: [
                "runtime.sagemaker.us-east-1.amazonaws.com": [
                    DNSTarget(vpcID: "vpc-1", addresses: [DNSAddress(zone: "us-east-1a", address: 0x0A00_010A)])
                ]
            ]
        )
        var accepted = 0
        var answered = 0
        var dropped = 0
        for round in 0..<10_000 {
            var bytes = seeds[Int(random.next() % UInt64(seeds.count))]
            switch round % 4 {
            case 0:
                bytes = (0..<Int(random.next() % 80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            case 1:
                bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1))))
            case 2:
                for _ in 0...Int(random.next() % 4) {
                    let index = Int(random.next() % UInt64(bytes.count))
                    bytes[index] = UInt8(truncatingIfNeeded: random.next())
                }
            default:
                bytes[2] &= 0x7F  // keep it a query so that the deeper checks are reached
                let index = 12 + Int(random.next() % UInt64(bytes.count - 12))
                bytes[index] = UInt8(truncatingIfNeeded: random.next())
                if random.next() % 2 == 0 {
                    bytes += (0..<Int(random.next() % 4)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                }
            }
            switch DNSMessage.parseQuery(bytes) {
            case .success(let query):
                accepted += 1
                #expect(bytes.count >= 12 + query.questionBytes.count)
                #expect(Array(bytes[12..<12 + query.questionBytes.count]) == query.questionBytes)
                #expect(query.questionBytes.count <= 255 + 4)
                #expect(query.flags & 0xF800 == 0)
                let limit = DNSMessage.udpResponseLimit(for: query)
                let source = UInt32(truncatingIfNeeded: random.next())
                let response = DNSResolver.answer(query, source: source, snapshot: snapshot, maxSize: limit)
                #expect(response.count <= limit)
                #expect(Array(response.prefix(2)) == Array(bytes.prefix(2)))
            case .failure(let failure):
                if let reply = failure.reply {
                    answered += 1
                    #expect(reply.count == 12)
                    #expect(Array(reply.prefix(2)) == Array(bytes.prefix(2)))
                } else {
                    dropped += 1
                    #expect(bytes.count < 12 || bytes[2] & 0x80 != 0)
                }
            }
        }
        #expect(accepted > 500)
        #expect(answered > 500)
        #expect(dropped > 500)
    }
}

/// A tiny deterministic generator (SplitMix64) for the fuzz test.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

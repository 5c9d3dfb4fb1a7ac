/// DNS response codes (RFC 1035 §4.1.1) that Strait's DNS sends.
public enum DNSRcode {
    /// No error.
    public static let noError: UInt8 = 0
    /// The query could not be interpreted (malformed).
    public static let formErr: UInt8 = 1
    /// The server failed to process the query.
    public static let servFail: UInt8 = 2
    /// The name does not exist.
    public static let nxDomain: UInt8 = 3
    /// The server does not support this kind of query (an opcode other than QUERY).
    public static let notImp: UInt8 = 4
    /// The server refuses to answer (a name it is not authoritative for).
    public static let refused: UInt8 = 5
}

/// One DNS query as received: the header fields Strait needs, the question, and the EDNS OPT record if any.
public struct DNSQuery: Sendable, Equatable {
    /// The query's ID, copied into the response.
    public var id: UInt16
    /// The query's flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode bits).
    public var flags: UInt16
    /// The QNAME as received: labels joined by `.`, no trailing dot, case preserved. Empty for the root.
    public var name: [UInt8]
    /// The QTYPE (1 for A, 28 for AAAA, 255 for ANY …).
    public var type: UInt16
    /// The QCLASS (1 for IN, 255 for ANY …).
    public var qclass: UInt16
    /// The question section exactly as received (QNAME in wire form, QTYPE, QCLASS), echoed back verbatim so that
    /// 0x20 case randomisation survives.
    public var questionBytes: [UInt8]
    /// Whether the query carried an EDNS OPT record.
    public var hasEDNS: Bool
    /// The requestor's UDP payload size from the OPT record, as sent (may be below 512); nil without EDNS.
    public var ednsUDPSize: UInt16?

    /// Creates a query from its parts.
    public init(
        id: UInt16,
        flags: UInt16,
        name: [UInt8],
        type: UInt16,
        qclass: UInt16,
        questionBytes: [UInt8],
        hasEDNS: Bool,
        ednsUDPSize: UInt16?
    ) {
        self.id = id
        self.flags = flags
        self.name = name
        self.type = type
        self.qclass = qclass
        self.questionBytes = questionBytes
        self.hasEDNS = hasEDNS
        self.ednsUDPSize = ednsUDPSize
    }
}

/// Why a message could not be taken as a query, and what the server should do about it.
public struct DNSParseFailure: Error, Sendable, Equatable {
    /// The message's ID when the header was readable and deserves an answer; nil when the message must be dropped
    /// (shorter than a header, or itself a response).
    public var id: UInt16?
    /// The message's flags word when the header was readable (0 otherwise), for `DNSMessage.errorResponse`.
    public var flags: UInt16
    /// True when the opcode is not QUERY: the answer is NOTIMP rather than FORMERR.
    public var notImplemented: Bool
    /// What was wrong, for logs.
    public var reason: String

    /// Creates a failure.
    public init(id: UInt16?, flags: UInt16, notImplemented: Bool = false, reason: String) {
        self.id = id
        self.flags = flags
        self.notImplemented = notImplemented
        self.reason = reason
    }

    /// The response code to answer with (NOTIMP or FORMERR), or nil when the message is to be dropped.
    public var rcode: UInt8? {
        guard id != nil else { return nil }
        return notImplemented ? DNSRcode.notImp : DNSRcode.formErr
    }

    /// The header-only error response to send back, or nil when the message is to be dropped.
    public var reply: [UInt8]? {
        guard let id, let rcode else { return nil }
        return DNSMessage.errorResponse(id: id, flags: flags, rcode: rcode)
    }
}

/// The RFC 1035 wire format for the queries Strait answers: strictly bounded parsing that never traps on any
/// input, and response building.
public enum DNSMessage {
    /// The size of a DNS header.
    static let headerSize = 12
    /// The largest DNS message (TCP's length prefix is 16 bits).
    static let maxMessageSize = 65_535
    /// The longest name in wire form, length bytes and the terminating zero included (RFC 1035 §2.3.4).
    static let maxNameWireLength = 255
    /// The longest label (RFC 1035 §2.3.4).
    static let maxLabelLength = 63
    /// The UDP payload size Strait advertises in its own OPT records (the DNS flag day 2020 value).
    public static let advertisedUDPSize: UInt16 = 1232
    /// The response limit for DNS over TCP.
    public static let tcpResponseLimit = 65_535

    static let typeA: UInt16 = 1
    static let typeOPT: UInt16 = 41
    static let typeANY: UInt16 = 255
    static let classIN: UInt16 = 1
    static let classANY: UInt16 = 255

    static let flagQR: UInt16 = 0x8000
    static let opcodeMask: UInt16 = 0x7800
    static let flagAA: UInt16 = 0x0400
    static let flagTC: UInt16 = 0x0200
    static let flagRD: UInt16 = 0x0100

    /// The size of one A record in a response: a compression pointer, TYPE, CLASS, TTL, RDLENGTH, 4 address bytes.
    static let answerRecordSize = 16
    /// The size of Strait's OPT record: root name, TYPE, CLASS, TTL, RDLENGTH 0.
    static let optRecordSize = 11

    /// The response limit for DNS over UDP: 512 without EDNS, else the requestor's size clamped to 512...1232.
    public static func udpResponseLimit(for query: DNSQuery) -> Int {
        max(512, min(Int(query.ednsUDPSize ?? 512), Int(advertisedUDPSize)))
    }

    /// Parses one DNS message (without TCP's length prefix) as a query.
    ///
    /// Accepts exactly one question, no answer or authority records, and at most one additional record, which
    /// must be an OPT record with the root name. Names must not use compression pointers. Trailing bytes are an
    /// error. A response (QR set) or a message shorter than a header fails with a nil `id`: drop it.
    public static func parseQuery(_ bytes: [UInt8]) -> Result<DNSQuery, DNSParseFailure> {
        var reader = DNSReader(bytes)
        guard let id = reader.readUInt16(),
            let flags = reader.readUInt16(),
            let qdcount = reader.readUInt16(),
            let ancount = reader.readUInt16(),
            let nscount = reader.readUInt16(),
            let arcount = reader.readUInt16()
        else {
            return .failure(DNSParseFailure(id: nil, flags: 0, reason: "shorter than a DNS header"))
        }
        func formErr(_ reason: String) -> Result<DNSQuery, DNSParseFailure> {
            .failure(DNSParseFailure(id: id, flags: flags, reason: reason))
        }
        guard flags & flagQR == 0 else {
            return .failure(DNSParseFailure(id: nil, flags: flags, reason: "a response, not a query"))
        }
        guard flags & opcodeMask == 0 else {
            let opcode = (flags & opcodeMask) >> 11
            return .failure(
                DNSParseFailure(id: id, flags: flags, notImplemented: true, reason: "opcode \(opcode) is not QUERY")
            )
        }
        guard bytes.count <= maxMessageSize else { return formErr("longer than \(maxMessageSize) bytes") }
        guard qdcount == 1 else { return formErr("QDCOUNT \(qdcount), expected 1") }
        guard ancount == 0 else { return formErr("ANCOUNT \(ancount) in a query") }
        guard nscount == 0 else { return formErr("NSCOUNT \(nscount) in a query") }
        guard arcount <= 1 else { return formErr("ARCOUNT \(arcount), at most one OPT record is allowed") }

        let questionStart = reader.position
        let name: [UInt8]
        switch readName(&reader) {
        case .success(let parsed): name = parsed
        case .failure(let reason): return formErr(reason.text)
        }
        guard let type = reader.readUInt16(), let qclass = reader.readUInt16() else {
            return formErr("question truncated")
        }
        let questionBytes = Array(bytes[questionStart..<reader.position])

        var ednsUDPSize: UInt16?
        if arcount == 1 {
            switch readOPT(&reader) {
            case .success(let size): ednsUDPSize = size
            case .failure(let reason): return formErr(reason.text)
            }
        }
        guard reader.isAtEnd else { return formErr("\(reader.remaining) trailing bytes") }
        return .success(
            DNSQuery(
                id: id,
                flags: flags,
                name: name,
                type: type,
                qclass: qclass,
                questionBytes: questionBytes,
                hasEDNS: ednsUDPSize != nil,
                ednsUDPSize: ednsUDPSize
            )
        )
    }

    /// Builds the response to `query`: its ID, QR set, opcode QUERY, AA as given, RD copied, RA clear, `rcode`
    /// (its low four bits), the question echoed verbatim, then one A record per answer (address in host order)
    /// named by a compression pointer to the question, and Strait's OPT record if the query had EDNS.
    ///
    /// When the answers do not fit in `maxSize` bytes (clamped to 65535), trailing answers are dropped until the
    /// rest fit and TC is set. A query with empty `questionBytes` is answered with QDCOUNT 0 and no answers.
    public static func response(
        to query: DNSQuery,
        rcode: UInt8,
        answers: [UInt32],
        ttl: UInt32,
        authoritative: Bool,
        maxSize: Int
    ) -> [UInt8] {
        let hasQuestion = !query.questionBytes.isEmpty
        let fixedSize = headerSize + query.questionBytes.count + (query.hasEDNS ? optRecordSize : 0)
        let limit = min(maxSize, maxMessageSize)
        let room = limit > fixedSize ? (limit - fixedSize) / answerRecordSize : 0
        let fitting = hasQuestion ? min(answers.count, room, Int(UInt16.max)) : 0
        let truncated = hasQuestion && fitting < answers.count

        var flags = flagQR | (query.flags & flagRD) | UInt16(rcode & 0x0F)
        if authoritative { flags |= flagAA }
        if truncated { flags |= flagTC }

        var out: [UInt8] = []
        out.reserveCapacity(fixedSize + fitting * answerRecordSize)
        out.appendUInt16(query.id)
        out.appendUInt16(flags)
        out.appendUInt16(hasQuestion ? 1 : 0)
        out.appendUInt16(UInt16(fitting))
        out.appendUInt16(0)
        out.appendUInt16(query.hasEDNS ? 1 : 0)
        out.append(contentsOf: query.questionBytes)
        for address in answers.prefix(fitting) {
            out.appendUInt16(0xC00C)  // pointer to the question's name at offset 12
            out.appendUInt16(typeA)
            out.appendUInt16(classIN)
            out.appendUInt32(ttl)
            out.appendUInt16(4)
            out.appendUInt32(address)
        }
        if query.hasEDNS { appendOPT(to: &out) }
        return out
    }

    /// A header-only error response (QDCOUNT 0) for a message whose question could not be parsed: the ID, QR set,
    /// the opcode and RD copied from `flags`, and `rcode` (its low four bits), typically FORMERR or NOTIMP.
    public static func errorResponse(id: UInt16, flags: UInt16, rcode: UInt8) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize)
        out.appendUInt16(id)
        out.appendUInt16(flagQR | (flags & (opcodeMask | flagRD)) | UInt16(rcode & 0x0F))
        for _ in 0..<4 { out.appendUInt16(0) }
        return out
    }

    /// Strait's OPT record: root name, TYPE OPT, CLASS = advertised UDP size, extended rcode/version/flags 0,
    /// no options.
    private static func appendOPT(to out: inout [UInt8]) {
        out.append(0)
        out.appendUInt16(typeOPT)
        out.appendUInt16(advertisedUDPSize)
        out.appendUInt32(0)
        out.appendUInt16(0)
    }

    /// Why a section was malformed.
    struct Malformed: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    /// Reads an uncompressed name; returns its labels joined by `.`.
    static func readName(_ reader: inout DNSReader) -> Result<[UInt8], Malformed> {
        var name: [UInt8] = []
        var wireLength = 1  // the terminating zero
        while true {
            guard let length = reader.readUInt8() else { return .failure(Malformed("name truncated")) }
            if length == 0 { return .success(name) }
            if length & 0xC0 == 0xC0 { return .failure(Malformed("compression pointer in a query name")) }
            // 0x40 and 0x80 flag extended and reserved label types: as lengths they are over 63 too.
            guard Int(length) <= maxLabelLength else {
                return .failure(Malformed("label of \(length) bytes, or an extended label type"))
            }
            wireLength += 1 + Int(length)
            guard wireLength <= maxNameWireLength else {
                return .failure(Malformed("name longer than \(maxNameWireLength) bytes"))
            }
            guard let label = reader.readBytes(Int(length)) else { return .failure(Malformed("label truncated")) }
            if !name.isEmpty { name.append(UInt8(ascii: ".")) }
            name.append(contentsOf: label)
        }
    }

    /// Reads the one additional record, which must be an OPT record with the root name; returns its UDP size.
    static func readOPT(_ reader: inout DNSReader) -> Result<UInt16, Malformed> {
        guard let owner = reader.readUInt8() else { return .failure(Malformed("additional record truncated")) }
        guard owner == 0 else { return .failure(Malformed("additional record is not an OPT record for the root")) }
        guard let type = reader.readUInt16(),
            let udpSize = reader.readUInt16(),
            reader.readUInt32() != nil,
            let rdlength = reader.readUInt16()
        else { return .failure(Malformed("OPT record truncated")) }
        guard type == typeOPT else { return .failure(Malformed("additional record of type \(type), not OPT")) }
        guard var options = reader.readBytes(Int(rdlength)).map(DNSReader.init) else {
            return .failure(Malformed("OPT data truncated"))
        }
        while !options.isAtEnd {
            guard options.readUInt16() != nil, let length = options.readUInt16(),
                options.readBytes(Int(length)) != nil
            else { return .failure(Malformed("OPT option truncated")) }
        }
        return .success(udpSize)
    }
}

/// A bounds-checked cursor over bytes: every read returns nil instead of going past the end.
struct DNSReader {
    private let bytes: [UInt8]
    /// The offset of the next byte to read, always within `0...bytes.count`.
    private(set) var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// How many bytes are left.
    var remaining: Int { bytes.count - position }

    /// Whether every byte has been read.
    var isAtEnd: Bool { position >= bytes.count }

    mutating func readUInt8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readUInt16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func readUInt32() -> UInt32? {
        guard remaining >= 4, let high = readUInt16(), let low = readUInt16() else { return nil }
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }
}

extension [UInt8] {
    /// Appends `value` big-endian.
    fileprivate mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends `value` big-endian.
    fileprivate mutating func appendUInt32(_ value: UInt32) {
        appendUInt16(UInt16(truncatingIfNeeded: value >> 16))
        appendUInt16(UInt16(truncatingIfNeeded: value))
    }
}

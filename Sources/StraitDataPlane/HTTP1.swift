public import NIOCore
public import StraitAuth
import StraitCore

/// HTTP/1.1 framing on bytes, for the invocation path: request and response heads (RFC 9112), message body framing
/// and chunked transfer coding, with nothing parsed that the path does not use.
///
/// A request head's names are lower-cased in the copy kept once the head checks out (every lookup here and SigV4's
/// canonical form want them so; names in response heads are compared ignoring case); values are kept as sent,
/// without surrounding whitespace. Anything a lenient parser would have to guess at — a control character in a
/// field, obs-fold, whitespace before a colon, a Content-Length that is not one number, both Content-Length and
/// Transfer-Encoding — is refused rather than interpreted.
public enum HTTP1 {
    /// The largest head (request or status line plus header fields) read.
    public static let maximumHeadSize = 64 * 1024
    /// The most header fields in one head.
    public static let maximumHeaderCount = 128

    /// Why a message could not be read; each maps to the status a server answers with.
    public enum ParseError: Error, Equatable, Sendable {
        case malformed(String)
        case headTooLarge
        case unsupportedVersion
        case unsupportedTransferCoding(String)

        /// The response status for a request that failed this way.
        public var status: Int {
            switch self {
            case .malformed: 400
            case .headTooLarge: 431
            case .unsupportedVersion: 505
            case .unsupportedTransferCoding: 501
            }
        }

        /// What was wrong, without saying whose message it was.
        public var reason: String {
            switch self {
            case .malformed(let reason): reason
            case .headTooLarge: "header fields larger than \(HTTP1.maximumHeadSize) bytes"
            case .unsupportedVersion: "an HTTP version other than 1.0 and 1.1"
            case .unsupportedTransferCoding(let coding): "Transfer-Encoding \(coding), which is not undone"
            }
        }

        public var message: String {
            switch self {
            case .malformed(let reason): "Malformed HTTP request: \(reason)."
            case .headTooLarge: "The request's header fields are larger than \(HTTP1.maximumHeadSize) bytes."
            case .unsupportedVersion: "Only HTTP/1.0 and HTTP/1.1 are served."
            case .unsupportedTransferCoding(let coding): "Transfer-Encoding \(coding) is not supported."
            }
        }
    }

    /// How the body of a message is delimited.
    public enum BodyFraming: Equatable, Sendable {
        case length(Int)
        case chunked
        /// A response without length or chunking: its body runs until the connection closes.
        case untilClose
    }

    public struct RequestHead: Sendable {
        public var method: String
        public var target: String
        /// 0 for HTTP/1.0, 1 for HTTP/1.1.
        public var minorVersion: Int
        /// The header fields in arrival order, names lower-cased, as ranges of one copy of the head's bytes: no
        /// `String` per field on the invocation path.
        public var fields: HeaderFields
        public var framing: BodyFraming
        public var keepAlive: Bool
        public var expectsContinue: Bool

        /// The header fields as strings, in arrival order (names lower-cased).
        public var headers: [(name: String, value: String)] { fields.strings }

        /// The first value of a header, by lower-case name.
        public func first(_ name: String) -> String? { fields.first(name) }
    }

    /// An instance's response head: only what the invocation path passes on or frames the body by is kept (no
    /// array of every field).
    public struct ResponseHead: Sendable {
        public var status: Int
        public var minorVersion: Int
        /// The first Content-Type.
        public var contentType: String?
        /// The first X-Amzn-SageMaker-Custom-Attributes.
        public var customAttributes: String?
        public var framing: BodyFraming
        public var keepAlive: Bool
    }

    // MARK: Finding and reading heads

    /// The length of the head at the start of `bytes` (through its empty line), or nil if it has not all arrived.
    /// `searchFrom` skips what an earlier call already looked at.
    static func headLength(_ bytes: UnsafeRawBufferPointer, searchFrom: Int = 0) -> Int? {
        // From line feed to line feed (memchr, many bytes a step), not byte by byte: every head is searched whole.
        var index = max(3, searchFrom)
        while let lf = Bytes.firstIndex(of: 0x0A, in: bytes, from: index) {
            if bytes[lf - 1] == 0x0D, bytes[lf - 2] == 0x0A, bytes[lf - 3] == 0x0D { return lf + 1 }
            index = lf + 1
        }
        return nil
    }

    /// Reads a request head from the start of `buffer`. Returns nil while the head is incomplete (`searched` keeps
    /// how far the search got, for the next call); throws when the head is malformed or too large.
    public static func parseRequestHead(
        _ buffer: ByteBuffer,
        searched: inout Int
    ) throws(ParseError) -> (head: RequestHead, length: Int)? {
        var fields = HeaderFields()
        return try parseRequestHead(buffer, searched: &searched, reusing: &fields)
    }

    /// ``parseRequestHead(_:searched:)`` into the buffers of `spare` (see ``HeaderFields/recycled()``), which it
    /// takes once a whole head is there (a head that turns out malformed loses them).
    public static func parseRequestHead(
        _ buffer: ByteBuffer,
        searched: inout Int,
        reusing spare: inout HeaderFields
    ) throws(ParseError) -> (head: RequestHead, length: Int)? {
        try buffer.withUnsafeReadableBytes { bytes throws(ParseError) in
            // A server ignores empty lines before the request line (RFC 9112, 2.2).
            var start = 0
            while start + 1 < bytes.count, bytes[start] == 0x0D, bytes[start + 1] == 0x0A { start += 2 }
            guard let end = headLength(bytes, searchFrom: max(start + 3, searched)) else {
                if bytes.count > maximumHeadSize { throw .headTooLarge }
                searched = max(0, bytes.count - 3)
                return nil
            }
            if end - start > maximumHeadSize { throw .headTooLarge }
            searched = 0
            var fields = spare.recycled()
            let head = try readRequest(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), into: &fields)
            return (head, end)
        }
    }

    /// Reads a response head from the start of `buffer`; nil while incomplete.
    public static func parseResponseHead(
        _ buffer: ByteBuffer,
        searched: inout Int
    ) throws(ParseError) -> (head: ResponseHead, length: Int)? {
        var head: ResponseHead?
        guard let length = try parseResponseHead(buffer, searched: &searched, into: &head), let head else { return nil }
        return (head, length)
    }

    /// ``parseResponseHead(_:searched:)`` with the head stored into `head` and its length returned: only an `Int`
    /// comes back out of the buffer's closure (a tuple holding the head was copied through value witnesses there).
    public static func parseResponseHead(
        _ buffer: ByteBuffer,
        searched: inout Int,
        into head: inout ResponseHead?
    ) throws(ParseError) -> Int? {
        try buffer.withUnsafeReadableBytes { bytes throws(ParseError) in
            guard let end = headLength(bytes, searchFrom: searched) else {
                if bytes.count > maximumHeadSize { throw .headTooLarge }
                searched = max(0, bytes.count - 3)
                return nil
            }
            if end > maximumHeadSize { throw .headTooLarge }
            searched = 0
            head = try readResponse(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
            return end
        }
    }

    /// A head's bytes, through its empty line.
    private struct Lines {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        /// The next line without its CRLF; a bare CR or LF inside stays in the line (and fails field checks).
        mutating func next() -> Range<Int>? {
            // A line's LF is at least one byte past its start (its CR).
            var index = position + 1
            while let lf = Bytes.firstIndex(of: 0x0A, in: bytes, from: index) {
                if bytes[lf - 1] == 0x0D {
                    defer { position = lf + 1 }
                    return position..<(lf - 1)
                }
                index = lf + 1
            }
            return nil
        }
    }

    /// Reads a request head; its fields go into `fields` (empty), which the head then holds.
    private static func readRequest(
        _ bytes: UnsafeRawBufferPointer,
        into fields: inout HeaderFields
    ) throws(ParseError) -> RequestHead {
        var lines = Lines(bytes: bytes)
        guard let line = lines.next() else { throw .malformed("no request line") }
        // method SP request-target SP HTTP-version
        var index = line.lowerBound
        while index < line.upperBound, isTokenByte(bytes[index]) { index += 1 }
        guard index > line.lowerBound, index < line.upperBound, bytes[index] == 0x20 else {
            throw .malformed("bad request line")
        }
        let method = string(bytes, line.lowerBound..<index)
        let targetStart = index + 1
        index = targetStart
        while index < line.upperBound, bytes[index] > 0x20, bytes[index] < 0x7F { index += 1 }
        guard index > targetStart, index < line.upperBound, bytes[index] == 0x20 else {
            throw .malformed("bad request target")
        }
        let target = string(bytes, targetStart..<index)
        let minor = try version(bytes, index + 1..<line.upperBound)
        var keepAlive = minor == 1
        var expectsContinue = false
        var framingFields = FramingFields()
        try forEachField(&lines) { name, value in
            fields.append(name: name, value: value)
            if nameIs(bytes, name, "content-length") {
                framingFields.addContentLength(UnsafeRawBufferPointer(rebasing: bytes[value]))
            } else if nameIs(bytes, name, "transfer-encoding") {
                framingFields.addTransferEncoding(string(bytes, value))
            } else if nameIs(bytes, name, "connection") {
                let text = string(bytes, value)
                if hasToken(text, "close") { keepAlive = false }
                if minor == 0, hasToken(text, "keep-alive") { keepAlive = true }
            } else if nameIs(bytes, name, "expect") {
                if minor == 1, equalsIgnoringCase(string(bytes, value), "100-continue") { expectsContinue = true }
            }
        }
        let framing = try framingFields.framing(isRequest: true, minorVersion: minor)
        // One copy of the head, kept by the request: its fields are ranges of it, with the names lower-cased.
        fields.setBytes(bytes)
        return RequestHead(
            method: method,
            target: target,
            minorVersion: minor,
            fields: fields,
            framing: framing ?? .length(0),
            keepAlive: keepAlive,
            expectsContinue: expectsContinue
        )
    }

    private static func readResponse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> ResponseHead {
        var lines = Lines(bytes: bytes)
        guard let line = lines.next(), line.count >= 12 else { throw .malformed("bad status line") }
        // HTTP-version SP 3DIGIT [SP reason-phrase]
        let minor = try version(bytes, line.lowerBound..<line.lowerBound + 8)
        let digits = line.lowerBound + 9
        guard bytes[line.lowerBound + 8] == 0x20, line.count == 12 || bytes[digits + 3] == 0x20 else {
            throw .malformed("bad status line")
        }
        var status = 0
        for index in digits..<digits + 3 {
            let byte = bytes[index]
            guard byte >= 0x30, byte <= 0x39 else { throw .malformed("bad status code") }
            status = status * 10 + Int(byte - 0x30)
        }
        guard status >= 100 else { throw .malformed("bad status code") }
        var keepAlive = minor == 1
        var contentType: String?
        var customAttributes: String?
        var framingFields = FramingFields()
        try forEachField(&lines) { name, value throws(ParseError) in
            if nameIs(bytes, name, "content-length") {
                framingFields.addContentLength(UnsafeRawBufferPointer(rebasing: bytes[value]))
            } else if nameIs(bytes, name, "transfer-encoding") {
                framingFields.addTransferEncoding(string(bytes, value))
            } else if nameIs(bytes, name, "content-type") {
                if contentType == nil { contentType = string(bytes, value) }
            } else if nameIs(bytes, name, "x-amzn-sagemaker-custom-attributes") {
                if customAttributes == nil { customAttributes = string(bytes, value) }
            } else if nameIs(bytes, name, "connection") {
                let text = string(bytes, value)
                if hasToken(text, "close") { keepAlive = false }
                if minor == 0, hasToken(text, "keep-alive") { keepAlive = true }
            }
        }
        let framing: BodyFraming
        if status < 200 || status == 204 || status == 304 {
            framing = .length(0)
        } else {
            framing = try framingFields.framing(isRequest: false, minorVersion: minor) ?? .untilClose
        }
        if framing == .untilClose { keepAlive = false }
        return ResponseHead(
            status: status,
            minorVersion: minor,
            contentType: contentType,
            customAttributes: customAttributes,
            framing: framing,
            keepAlive: keepAlive
        )
    }

    /// Whether the field name at `range` is `lower` (a lower-case literal), in any case.
    private static func nameIs(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lower: StaticString) -> Bool {
        nameIs(bytes, range, UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount))
    }

    /// Whether the field name at `range` is the lower-case bytes `lower`, in any case.
    private static func nameIs(
        _ bytes: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        _ lower: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        guard range.count == lower.count else { return false }
        for offset in 0..<range.count {
            let byte = bytes[range.lowerBound + offset]
            if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != lower[offset] { return false }
        }
        return true
    }

    /// `HTTP/1.0` or `HTTP/1.1` → its minor version.
    private static func version(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(ParseError) -> Int {
        let name: [UInt8] = [0x48, 0x54, 0x54, 0x50, 0x2F]  // "HTTP/"
        guard range.count == 8, (0..<5).allSatisfy({ bytes[range.lowerBound + $0] == name[$0] }),
            bytes[range.lowerBound + 6] == UInt8(ascii: ".")
        else { throw .malformed("bad HTTP version") }
        let major = bytes[range.lowerBound + 5]
        let minor = bytes[range.lowerBound + 7]
        guard major >= 0x30, major <= 0x39, minor >= 0x30, minor <= 0x39 else { throw .malformed("bad HTTP version") }
        guard major == UInt8(ascii: "1"), minor <= UInt8(ascii: "1") else { throw .unsupportedVersion }
        return Int(minor - 0x30)
    }

    /// Checks each header field up to the empty line and hands its name and value (without surrounding whitespace)
    /// to `body` as ranges of the head's bytes.
    private static func forEachField(
        _ lines: inout Lines,
        _ body: (_ name: Range<Int>, _ value: Range<Int>) throws(ParseError) -> Void
    ) throws(ParseError) {
        let bytes = lines.bytes
        var count = 0
        while let line = lines.next() {
            if line.isEmpty { return }
            guard count < maximumHeaderCount else { throw .malformed("too many header fields") }
            count += 1
            var colon = line.lowerBound
            while colon < line.upperBound, isTokenByte(bytes[colon]) { colon += 1 }
            guard colon > line.lowerBound, colon < line.upperBound, bytes[colon] == UInt8(ascii: ":") else {
                throw .malformed("bad header field")
            }
            var start = colon + 1
            var end = line.upperBound
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            guard !hasControlCharacter(bytes, start..<end) else {
                throw .malformed("control character in a header field")
            }
            try body(line.lowerBound..<colon, start..<end)
        }
        throw .malformed("unterminated head")
    }

    /// Whether `range` holds a control character other than HTAB (below 0x20, or DEL), eight bytes a step: a byte
    /// below 0x20 and a DEL each leave a high bit in the word tests below, and only a word that shows one is read
    /// byte by byte (so a tab, which shows too, is let through).
    @inline(__always)
    static func hasControlCharacter(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var index = range.lowerBound
        while index + 8 <= range.upperBound {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let delete = word ^ (ones &* 0x7F)
            let flagged = ((word &- ones &* 0x20) & ~word & highs) | ((delete &- ones) & ~delete & highs)
            if flagged != 0, hasControlByte(bytes, index..<index + 8) { return true }
            index += 8
        }
        return hasControlByte(bytes, index..<range.upperBound)
    }

    @inline(__always)
    private static func hasControlByte(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        for index in range {
            let byte = bytes[index]
            if (byte < 0x20 && byte != 0x09) || byte == 0x7F { return true }
        }
        return false
    }

    /// Content-Length and Transfer-Encoding fields, gathered as a head is read; ``framing(isRequest:minorVersion:)``
    /// then gives the body's framing, nil when the message has neither. A malformed field is held until then: a
    /// response whose status has no body (1xx, 204, 304) never asks, and its framing fields are not read.
    private struct FramingFields {
        private var length: Int?
        private var codings: [Substring] = []
        /// The first malformed field's error.
        private var error: ParseError?

        /// `text`: the field value's bytes (read at once, not kept).
        mutating func addContentLength(_ text: UnsafeRawBufferPointer) {
            guard error == nil else { return }
            do throws(ParseError) { try readContentLength(text) } catch { self.error = error }
        }

        mutating func addTransferEncoding(_ text: String) {
            guard error == nil else { return }
            do throws(ParseError) { try readTransferEncoding(text) } catch { self.error = error }
        }

        /// One number, or the same number repeated in a list ("5, 5"), as RFC 9110 8.6 allows. Each element:
        /// optional whitespace, digits, optional whitespace ("1 2" is refused).
        private mutating func readContentLength(_ bytes: UnsafeRawBufferPointer) throws(ParseError) {
            var value = 0
            var digits = 0
            var numberEnded = false
            var index = 0
            while true {
                let byte = index < bytes.count ? bytes[index] : UInt8(ascii: ",")
                if byte == UInt8(ascii: ",") {
                    guard digits > 0, length == nil || length == value else { throw .malformed("bad Content-Length") }
                    length = value
                    value = 0
                    digits = 0
                    numberEnded = false
                } else if byte == 0x20 || byte == 0x09 {
                    numberEnded = digits > 0
                } else {
                    guard byte >= 0x30, byte <= 0x39, digits < 15, !numberEnded else {
                        throw .malformed("bad Content-Length")
                    }
                    value = value * 10 + Int(byte - 0x30)
                    digits += 1
                }
                guard index < bytes.count else { break }
                index += 1
            }
        }

        private mutating func readTransferEncoding(_ text: String) throws(ParseError) {
            var found = false
            for coding in text.split(separator: ",") {
                let trimmed = coding.trimmingWhitespace()
                if !trimmed.isEmpty {
                    codings.append(trimmed)
                    found = true
                }
            }
            guard found else { throw .malformed("empty Transfer-Encoding") }
        }

        func framing(isRequest: Bool, minorVersion: Int) throws(ParseError) -> BodyFraming? {
            if let error { throw error }
            guard !codings.isEmpty else { return length.map { .length($0) } }
            if length != nil { throw .malformed("both Content-Length and Transfer-Encoding") }
            if isRequest, minorVersion == 0 { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
            // Only chunked is undone; any other coding (gzip, compress, …), in a request or an instance's answer,
            // would hand on bytes that are not the body.
            guard codings.count == 1, equalsIgnoringCase(String(codings[0]), "chunked") else {
                let other = codings.first { !equalsIgnoringCase(String($0), "chunked") } ?? codings[0]
                throw .unsupportedTransferCoding(String(other))
            }
            return .chunked
        }
    }

    // MARK: Bodies

    /// A piece of a body, as a ``BodyReader`` or ``ChunkedDecoder`` reads it.
    public enum Piece {
        case needMore
        /// Body bytes; `last` when they are known to end the body (a Content-Length body's final bytes).
        case data(ByteBuffer, last: Bool)
        case end
    }

    /// Reads a message body in the framing its head gave, piece by piece.
    public struct BodyReader: Sendable {
        private enum Mode: Sendable {
            case length(remaining: Int)
            case chunked(ChunkedDecoder)
            case untilClose
        }

        private var mode: Mode

        public init(_ framing: BodyFraming) {
            switch framing {
            case .length(let length): mode = .length(remaining: length)
            case .chunked: mode = .chunked(ChunkedDecoder())
            case .untilClose: mode = .untilClose
            }
        }

        /// The bytes still to come of a Content-Length body; nil for other framings.
        public var remainingLength: Int? {
            if case .length(let remaining) = mode { return remaining }
            return nil
        }

        public var endsWithConnection: Bool {
            if case .untilClose = mode { return true }
            return false
        }

        /// The next piece of the body from `input` (consuming what it reads).
        public mutating func next(_ input: inout ByteBuffer) throws(ParseError) -> Piece {
            switch mode {
            case .length(let remaining):
                if remaining == 0 { return .end }
                let count = min(remaining, input.readableBytes)
                guard count > 0, let slice = input.readSlice(length: count) else { return .needMore }
                mode = .length(remaining: remaining - count)
                return .data(slice, last: count == remaining)
            case .chunked(var decoder):
                let piece = try decoder.next(&input)
                mode = .chunked(decoder)
                return piece
            case .untilClose:
                guard input.readableBytes > 0, let slice = input.readSlice(length: input.readableBytes) else {
                    return .needMore
                }
                return .data(slice, last: false)
            }
        }
    }

    /// A body collected up to a limit; past it, the bytes are dropped and only that fact is kept.
    public struct BodyBuffer: Sendable {
        public private(set) var bytes: ByteBuffer?
        public private(set) var tooLarge: Bool
        public let limit: Int

        public init(limit: Int, tooLarge: Bool = false) {
            self.limit = limit
            self.tooLarge = tooLarge
        }

        /// Adds a piece. A body that arrives whole is kept as the slice it came in (no copy); one in pieces is
        /// gathered in a buffer sized by `expected` (the declared length, when there is one), but at most 64 KiB ahead
        /// of what has arrived.
        public mutating func append(
            _ slice: inout ByteBuffer,
            last: Bool,
            expected: Int?,
            allocator: ByteBufferAllocator
        ) {
            guard !tooLarge else { return }
            if (bytes?.readableBytes ?? 0) + slice.readableBytes > limit {
                tooLarge = true
                bytes = nil
            } else if bytes == nil, last {
                bytes = slice
            } else if bytes == nil {
                // Sized by the declared length, but no more than 64 KiB ahead of what arrived: a length is only a claim.
                var buffer = allocator.buffer(
                    capacity: max(min(expected ?? 0, slice.readableBytes + 65536), slice.readableBytes * 2)
                )
                buffer.writeBuffer(&slice)
                bytes = buffer
            } else {
                bytes?.writeBuffer(&slice)
            }
        }
    }

    // MARK: Chunked transfer coding

    /// Reads a chunked body piece by piece (RFC 9112, 7.1); chunk extensions and trailer fields are skipped.
    public struct ChunkedDecoder: Sendable {
        private enum State: Sendable {
            case size
            case data(remaining: Int)
            case dataEnd
            case trailer
            case done
        }

        /// The longest chunk-size line or trailer line read.
        static let maximumLineLength = 4096
        private var state = State.size
        private var trailerBytes = 0

        public init() {}

        /// The next piece of the body from `input` (consuming what it reads).
        public mutating func next(_ input: inout ByteBuffer) throws(ParseError) -> Piece {
            while true {
                switch state {
                case .size:
                    guard let line = try Self.line(&input) else { return .needMore }
                    // chunk-size [BWS] [";" extensions]: nothing else may follow the digits.
                    var size = 0
                    var digits = 0
                    var index = 0
                    while index < line.count, let digit = line[index].hexDigitValue {
                        guard digits < 15 else { throw .malformed("chunk too large") }
                        size = size * 16 + Int(digit)
                        digits += 1
                        index += 1
                    }
                    while index < line.count, line[index] == 0x20 || line[index] == 0x09 { index += 1 }
                    guard digits > 0, index == line.count || line[index] == UInt8(ascii: ";") else {
                        throw .malformed("bad chunk size")
                    }
                    state = size == 0 ? .trailer : .data(remaining: size)
                case .data(let remaining):
                    guard input.readableBytes > 0 else { return .needMore }
                    let count = min(remaining, input.readableBytes)
                    let slice = input.readSlice(length: count)!
                    state = count == remaining ? .dataEnd : .data(remaining: remaining - count)
                    return .data(slice, last: false)
                case .dataEnd:
                    guard input.readableBytes >= 2 else { return .needMore }
                    guard input.readInteger(as: UInt16.self) == 0x0D0A else { throw .malformed("bad chunk end") }
                    state = .size
                case .trailer:
                    guard let line = try Self.line(&input) else { return .needMore }
                    trailerBytes += line.count + 2
                    guard trailerBytes <= HTTP1.maximumHeadSize else { throw .headTooLarge }
                    if line.isEmpty {
                        state = .done
                        return .end
                    }
                case .done:
                    return .end
                }
            }
        }

        /// The next CRLF-terminated line (consumed, CRLF dropped), or nil while it has not all arrived.
        private static func line(_ input: inout ByteBuffer) throws(ParseError) -> [UInt8]? {
            let view = input.readableBytesView
            guard let lf = view.firstIndex(of: 0x0A) else {
                if view.count > maximumLineLength { throw .malformed("chunk line too long") }
                return nil
            }
            let length = lf - view.startIndex
            guard length >= 1, view[lf - 1] == 0x0D else { throw .malformed("bare LF in chunked body") }
            guard length <= maximumLineLength else { throw .malformed("chunk line too long") }
            let line = input.readBytes(length: length - 1)!
            input.moveReaderIndex(forwardBy: 2)
            return line
        }
    }

    // MARK: Bytes

    /// RFC 9110 tchar.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        // tchar as two 64-bit maps (bit b of `low` for byte b below 64, of `high` for byte 64 + b): a shift and a
        // mask per byte of every method and header name, where a switch over the ranges made a chain of compares.
        let low: UInt64 = 0x03FF_6CFA_0000_0000  // ! # $ % & ' * + - . 0-9
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // A-Z ^ _ ` a-z | ~
        return byte < 64 ? (low >> UInt64(byte)) & 1 == 1 : byte < 128 && (high >> UInt64(byte &- 64)) & 1 == 1
    }

    private static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// ASCII case-insensitive equality with a lower-case literal.
    static func equalsIgnoringCase(_ value: String, _ lower: String) -> Bool {
        value.utf8.count == lower.utf8.count
            && zip(value.utf8, lower.utf8).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
    }

    /// Whether a comma-separated field value holds `token` (ASCII case-insensitive).
    static func hasToken(_ value: String, _ token: String) -> Bool {
        value.utf8.split(separator: UInt8(ascii: ",")).contains { item in
            equalsIgnoringCase(String(Substring(item).trimmingWhitespace()), token)
        }
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}

import NIOCore
import StraitAuth
import Testing

@testable import StraitDataPlane

@Suite struct HTTP1RequestTests {
    private func parse(_ text: String) throws(HTTP1.ParseError) -> HTTP1.RequestHead? {
        var searched = 0
        return try HTTP1.parseRequestHead(ByteBuffer(string: text), searched: &searched)?.head
    }

    @Test func readsARequestHead() throws {
        let head = try #require(
            try parse(
                "POST /endpoints/e/invocations?a=1 HTTP/1.1\r\nHost: x\r\nContent-Type:  text/csv \r\nX-Amz-Date:20261130T000000Z\r\nContent-Length: 3\r\n\r\nabc"
            )
        )
        #expect(head.method == "POST")
        #expect(head.target == "/endpoints/e/invocations?a=1")
        #expect(head.minorVersion == 1)
        #expect(head.headers.map(\.name) == ["host", "content-type", "x-amz-date", "content-length"])
        #expect(head.first("content-type") == "text/csv")
        #expect(head.first("x-amz-date") == "20261130T000000Z")
        #expect(head.framing == .length(3))
        #expect(head.keepAlive)
        #expect(!head.expectsContinue)
    }

    @Test func headerNamesAreLowerCasedKnownOrNot() throws {
        // Known names in any case, names one letter away from a known one, names of a known one's length.
        let names = [
            "HOST", "Hosu", "hosT", "CONTENT-Type", "Content-Typf", "X-Amz-Date", "X-Amz-Datf", "X-Amz-Content-SHA256",
            "x-amz-content-sha257", "X_Amz-Date", "User-Agent", "AMZ-SDK-Invocation-ID", "X-Custom-Header", "a",
            "X-Amzn-SageMaker-Target-Container-Hostname", "X-Amzn-SageMaker-Inference-Ie", "amz-sdk-invocation-iD",
            "X-AMZN-SAGEMAKER-CUSTOM-ATTRIBUTES",
        ]
        let fields = names.enumerated().map { "\($1): \($0)\r\n" }.joined()
        let head = try #require(try parse("POST / HTTP/1.1\r\n" + fields + "Content-Length: 0\r\n\r\n"))
        #expect(head.headers.map(\.name) == names.map { $0.lowercased() } + ["content-length"])
        #expect(head.headers.map(\.value) == names.indices.map(String.init) + ["0"])
        #expect(head.framing == .length(0))
    }

    @Test func headLengthCoversThroughTheEmptyLine() throws {
        var searched = 0
        let text = "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT"
        let parsed = try #require(try HTTP1.parseRequestHead(ByteBuffer(string: text), searched: &searched))
        #expect(parsed.length == text.utf8.count - 4)
        #expect(parsed.head.framing == .length(0))
    }

    @Test func anIncompleteHeadWaitsAndResumesWhereTheSearchStopped() throws {
        let text = "GET /ping HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
        let bytes = Array(text.utf8)
        var searched = 0
        for end in 1..<bytes.count {
            #expect(try HTTP1.parseRequestHead(ByteBuffer(bytes: bytes[..<end]), searched: &searched) == nil)
            #expect(searched <= end)
        }
        let parsed = try #require(try HTTP1.parseRequestHead(ByteBuffer(bytes: bytes), searched: &searched))
        #expect(parsed.length == bytes.count)
        #expect(searched == 0)
    }

    @Test func connectionAndExpectation() throws {
        #expect(try parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")?.keepAlive == false)
        #expect(try parse("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(try parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?.keepAlive == true)
        #expect(try parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n")?.keepAlive == false)
        let expecting = try parse("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
        #expect(expecting?.expectsContinue == true)
        #expect(try parse("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        #expect(try parse("PUT / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n")?.framing == .length(7))
        #expect(try parse("PUT / HTTP/1.1\r\nContent-Length:  7 \r\n\r\n")?.framing == .length(7))
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", HTTP1.ParseError.malformed("bad request line")),
        ("GET\r\n\r\n", .malformed("bad request line")),
        ("GET / HTTP/1.1 extra\r\n\r\n", .malformed("bad HTTP version")),
        ("GET  / HTTP/1.1\r\n\r\n", .malformed("bad request target")),
        ("GET / HTTP/2.0\r\n\r\n", .unsupportedVersion),
        ("GET / HTTX/1.1\r\n\r\n", .malformed("bad HTTP version")),
        ("G(T / HTTP/1.1\r\n\r\n", .malformed("bad request line")),
        ("GET /\u{7F} HTTP/1.1\r\n\r\n", .malformed("bad request target")),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", .malformed("bad header field")),
        ("GET / HTTP/1.1\r\n: x\r\n\r\n", .malformed("bad header field")),
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", .malformed("bad header field")),
        ("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", .malformed("bad header field")),
        ("GET / HTTP/1.1\r\nA: b\u{0}c\r\n\r\n", .malformed("control character in a header field")),
        ("GET / HTTP/1.1\r\nA: b\nInjected: c\r\n\r\n", .malformed("control character in a header field")),
        ("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", .malformed("control character in a header field")),
        ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n", .malformed("bad Content-Length")),
        ("POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\n", .malformed("empty Transfer-Encoding")),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n", .malformed("empty Transfer-Encoding")),
        (
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            .malformed("both Content-Length and Transfer-Encoding")
        ),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferCoding("gzip")),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding("gzip")),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            .malformed("Transfer-Encoding in an HTTP/1.0 request")
        ),
    ])
    func refusesMalformedHeads(_ text: String, _ expected: HTTP1.ParseError) {
        #expect(throws: expected) { try parse(text) }
    }

    @Test func everyControlCharacterIsFoundWhereverItSitsInALongValue() throws {
        // The check reads eight bytes a step: each refused byte at each offset of a 21-byte value (two whole words and
        // a tail), next to bytes it must let through (HTAB, obs-text, '~', space).
        let refused: [UInt8] = Array(0x00...0x08) + Array(0x0A...0x1F) + [0x7F]
        let allowed: [UInt8] = [0x09, 0x20, 0x7E, 0x80, 0xA0, 0xFF]
        for offset in 0..<21 {
            for byte in refused + allowed {
                var value = [UInt8](repeating: UInt8(ascii: "v"), count: 21)
                value[offset] = byte
                if offset > 0 { value[offset - 1] = 0x09 }
                var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nA: x")
                buffer.writeBytes(value)
                buffer.writeString("x\r\n\r\n")
                var searched = 0
                if refused.contains(byte) {
                    #expect(throws: HTTP1.ParseError.malformed("control character in a header field")) {
                        try HTTP1.parseRequestHead(buffer, searched: &searched)
                    }
                } else {
                    let head = try #require(try HTTP1.parseRequestHead(buffer, searched: &searched)?.head)
                    #expect(
                        head.first("a")?.utf8.count
                            == String(decoding: [0x78] + value + [0x78], as: UTF8.self).utf8.count
                    )
                }
            }
        }
    }

    @Test func headsEndAtTheFirstEmptyLineWhateverBareLineFeedsComeFirst() throws {
        // LFs without a CR, and CRLF LF, do not end a line or the head; the first CRLF CRLF does.
        var searched = 0
        let withLoneFeeds = ByteBuffer(string: "GET /\n HTTP/1.1\r\n\r\n")
        #expect(throws: HTTP1.ParseError.malformed("bad request target")) {
            try HTTP1.parseRequestHead(withLoneFeeds, searched: &searched)
        }
        searched = 0
        let partial = ByteBuffer(string: "GET / HTTP/1.1\r\nA: b\r\n\nC: d\r\n")
        #expect(try HTTP1.parseRequestHead(partial, searched: &searched) == nil)
        #expect(searched == partial.readableBytes - 3)
        var complete = partial
        complete.writeString("\r\nrest")
        #expect(complete.withUnsafeReadableBytes { HTTP1.headLength($0) } == complete.readableBytes - 4)
        // The line that starts with the lone LF is no header field.
        #expect(throws: HTTP1.ParseError.malformed("bad header field")) {
            try HTTP1.parseRequestHead(complete, searched: &searched)
        }
    }

    @Test func headsReadIntoRecycledBuffersHoldOnlyTheirOwnFields() throws {
        // A long head, then a short one and a malformed one in its recycled buffers, then a long one again.
        var spare = HeaderFields()
        var searched = 0
        let long = "POST /a HTTP/1.1\r\nHost: x\r\nX-Long: \(String(repeating: "v", count: 300))\r\nAccept: */*\r\n\r\n"
        var first = try #require(
            try HTTP1.parseRequestHead(ByteBuffer(string: long), searched: &searched, reusing: &spare)
        )
        #expect(first.head.headers.map(\.name) == ["host", "x-long", "accept"])
        spare = first.head.fields.recycled()
        #expect(first.head.fields.count == 0)
        #expect(spare.count == 0 && spare.bytes.isEmpty)

        let short = "GET /b HTTP/1.1\r\nCONTENT-TYPE: text/csv\r\n\r\n"
        var second = try #require(
            try HTTP1.parseRequestHead(ByteBuffer(string: short), searched: &searched, reusing: &spare)
        )
        #expect(second.head.headers.map(\.name) == ["content-type"])
        #expect(second.head.first("content-type") == "text/csv")
        #expect(second.head.first("x-long") == nil)
        spare = second.head.fields.recycled()

        #expect(throws: HTTP1.ParseError.malformed("bad header field")) {
            try HTTP1.parseRequestHead(
                ByteBuffer(string: "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"),
                searched: &searched,
                reusing: &spare
            )
        }
        let third = try #require(
            try HTTP1.parseRequestHead(ByteBuffer(string: long), searched: &searched, reusing: &spare)
        )
        #expect(third.head.headers.map(\.value) == ["x", String(repeating: "v", count: 300), "*/*"])
        // A head still held elsewhere keeps its fields when its buffers are recycled (they are copied on write).
        let held = third.head
        var recycledFrom = third.head.fields
        spare = recycledFrom.recycled()
        let fourth = try #require(
            try HTTP1.parseRequestHead(ByteBuffer(string: short), searched: &searched, reusing: &spare)
        )
        #expect(held.headers.map(\.name) == ["host", "x-long", "accept"])
        #expect(fourth.head.headers.map(\.name) == ["content-type"])
    }

    @Test func tokenBytesAreExactlyRFC9110s() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(HTTP1.isTokenByte(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }

    @Test func refusesOversizedHeads() {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTP1.maximumHeadSize) + "\r\n\r\n"
        #expect(throws: HTTP1.ParseError.headTooLarge) { try parse(big) }
        // Before the end of the head has even arrived.
        let unterminated = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTP1.maximumHeadSize)
        #expect(throws: HTTP1.ParseError.headTooLarge) { try parse(unterminated) }
        let many = "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: HTTP1.maximumHeaderCount + 1) + "\r\n"
        #expect(throws: HTTP1.ParseError.malformed("too many header fields")) { try parse(many) }
    }

    @Test func everyStatusForAParseError() {
        #expect(HTTP1.ParseError.malformed("x").status == 400)
        #expect(HTTP1.ParseError.headTooLarge.status == 431)
        #expect(HTTP1.ParseError.unsupportedVersion.status == 505)
        #expect(HTTP1.ParseError.unsupportedTransferCoding("gzip").status == 501)
    }
}

@Suite struct HTTP1ResponseTests {
    private func parse(_ text: String) throws(HTTP1.ParseError) -> HTTP1.ResponseHead? {
        var searched = 0
        return try HTTP1.parseResponseHead(ByteBuffer(string: text), searched: &searched)?.head
    }

    @Test func framingOfResponses() throws {
        let ok = try #require(try parse("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 4\r\n\r\n"))
        #expect(ok.status == 200)
        #expect(ok.framing == .length(4))
        #expect(ok.keepAlive)
        #expect(ok.contentType == "text/csv")
        #expect(ok.customAttributes == nil)
        #expect(try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        let untilClose = try #require(try parse("HTTP/1.1 200 OK\r\n\r\n"))
        #expect(untilClose.framing == .untilClose)
        #expect(!untilClose.keepAlive)
        #expect(try parse("HTTP/1.1 204 No Content\r\n\r\n")?.framing == .length(0))
        #expect(try parse("HTTP/1.1 100 Continue\r\n\r\n")?.status == 100)
        #expect(try parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(try parse("HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n")?.status == 500)
    }

    /// A status without a body (1xx, 204, 304) is framed by its status: its framing fields are not read, as before
    /// they were parsed field by field.
    @Test(arguments: [
        "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 1, 2\r\n\r\n",
        "HTTP/1.1 100 Continue\r\nTransfer-Encoding: ,\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
    ])
    func bodylessStatusesIgnoreTheirFramingFields(_ text: String) throws {
        #expect(try parse(text)?.framing == .length(0))
    }

    @Test func keepsTheFirstContentTypeAndCustomAttributesInAnyCase() throws {
        let head = try #require(
            try parse(
                "HTTP/1.1 200 OK\r\nCONTENT-TYPE:  application/json \r\ncontent-type: text/csv\r\n"
                    + "X-Amzn-SageMaker-Custom-Attributes: a=1; b=2\r\nx-amzn-sagemaker-custom-attributes: c\r\n"
                    + "Content-Typf: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
            )
        )
        #expect(head.contentType == "application/json")
        #expect(head.customAttributes == "a=1; b=2")
        #expect(head.framing == .length(2))
        #expect(!head.keepAlive)
    }

    @Test(arguments: [
        "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n",
        "HTTX/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nA: \u{1}\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
        // Codings other than chunked are not undone: passing the bytes on would hand over something else.
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ])
    func refusesMalformedResponses(_ text: String) {
        #expect(throws: HTTP1.ParseError.self) { try parse(text) }
    }
}

@Suite struct ChunkedDecoderTests {
    /// Decodes `text` fed `step` bytes at a time; returns the body, or nil if it did not end.
    private func decode(_ text: String, step: Int) throws(HTTP1.ParseError) -> String? {
        let bytes = Array(text.utf8)
        var decoder = HTTP1.ChunkedDecoder()
        var input = ByteBuffer()
        var body = ""
        var offset = 0
        while true {
            switch try decoder.next(&input) {
            case .data(let slice, _): body += String(buffer: slice)
            case .end: return body
            case .needMore:
                guard offset < bytes.count else { return nil }
                let end = min(bytes.count, offset + step)
                input.writeBytes(bytes[offset..<end])
                offset = end
            }
        }
    }

    @Test func decodesAtEverySplit() throws {
        let text = "5\r\nhello\r\n1 ;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
        for step in 1...text.utf8.count {
            #expect(try decode(text, step: step) == "hello 0123456789")
        }
    }

    @Test func anUnfinishedBodyWaits() throws {
        #expect(try decode("5\r\nhel", step: 100) == nil)
        #expect(try decode("0\r\n", step: 100) == nil)
    }

    @Test(arguments: [
        "x\r\n", "\r\n", "5\r\nhelloXX", "5\nhello\r\n", "fffffffffffffffff\r\n", "-1\r\n", "5 6\r\n",
        "5 junk\r\n", "5x\r\n", String(repeating: "1", count: 5000),
    ])
    func refusesMalformedChunks(_ text: String) {
        #expect(throws: HTTP1.ParseError.self) { try decode(text, step: 100) }
    }
}

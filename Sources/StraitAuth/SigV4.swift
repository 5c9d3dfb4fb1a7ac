import Foundation
import StraitCore

/// What SigV4 signs of an HTTP request.
public struct SignableRequest: Sendable {
    public var method: String
    /// The path exactly as it arrived on the request line (no query).
    public var path: String
    /// The raw query string, without `?`; empty when there is none.
    public var query: String
    /// Header fields in arrival order, names lower-cased; repeated names allowed. (Fields given as bytes are made
    /// strings here, when asked for.)
    public var headers: [(name: String, value: String)] {
        get {
            switch fields {
            case .strings(let headers): headers
            case .bytes(let fields): fields.strings
            }
        }
        set { fields = .strings(Self.lowercasingNames(newValue)) }
    }
    /// The header fields as given: strings, or a parser's bytes, read in place.
    var fields: Fields
    /// Lowercase hex SHA-256 of the body.
    public var payloadHash: String {
        get {
            switch payload {
            case .hex(let text): text
            case .digest(let digest): digest.withUnsafeBytes { SigV4.hex($0) }
            }
        }
        set { payload = .hex(newValue) }
    }
    /// The body's hash as given.
    public var payload: Payload
    /// S3's rule: the path is already URI-encoded once and is used as the canonical URI as it is (no second
    /// encoding, no removal of dot or empty segments). Every other service normalises and encodes it.
    public var pathIsCanonical = false

    /// The body's SHA-256: as lowercase hex, or as the digest itself, which is hex-encoded straight into the
    /// canonical request (the data plane's: no string per call).
    public enum Payload: Sendable {
        case hex(String)
        case digest(SHA256Digest)
    }

    enum Fields: Sendable {
        case strings([(name: String, value: String)])
        case bytes(HeaderFields)
    }

    public init(
        method: String,
        path: String,
        query: String,
        headers: [(name: String, value: String)],
        payload: Payload
    ) {
        self.init(
            method: method,
            path: path,
            query: query,
            fields: .strings(Self.lowercasingNames(headers)),
            payload: payload
        )
    }

    private init(method: String, path: String, query: String, fields: Fields, payload: Payload) {
        self.method = method
        self.path = path
        self.query = query
        self.fields = fields
        self.payload = payload
    }

    /// Splits a request target (`/path?query`) into path and query, and hashes `body`.
    public init(method: String, target: String, headers: [(name: String, value: String)], body: some Sequence<UInt8>) {
        let digest =
            body.withContiguousStorageIfAvailable { SigV4.sha256(UnsafeRawBufferPointer($0)) }
            ?? Array(body).withUnsafeBytes { SigV4.sha256($0) }
        self.init(method: method, target: target, headers: headers, payload: .digest(digest))
    }

    /// Splits a request target (`/path?query`) into path and query.
    public init(
        method: String,
        target: String,
        headers: [(name: String, value: String)],
        payload: Payload
    ) {
        let (path, query) = Self.split(target)
        self.init(method: method, path: path, query: query, headers: headers, payload: payload)
    }

    /// A request whose header fields are a parser's bytes (names lower-case), read in place; splits the target
    /// (`/path?query`) into path and query.
    public init(method: String, target: String, fields: HeaderFields, payload: Payload) {
        let (path, query) = Self.split(target)
        self.init(method: method, path: path, query: query, fields: .bytes(fields), payload: payload)
    }

    private static func split(_ target: String) -> (path: String, query: String) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target, "") }
        return (String(target[..<mark]), String(target[target.utf8.index(after: mark)...]))
    }

    /// Whether `text` is the body's hash in lowercase hex.
    func payloadHashIs(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        switch payload {
        case .hex(let hex): return SigV4.holds(hex, text)
        case .digest(let digest): return digest.withUnsafeBytes { SigV4Verifier.constantTimeHexEqual($0, text) }
        }
    }

    static func lowercasingNames(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        headers.map { header in
            // Most names are already lower-case or ASCII: only change what needs it.
            header.name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") })
                ? (name: header.name.lowercased(), value: header.value) : header
        }
    }

    /// Calls `body` with each value of the header `name` (lower-case bytes), in arrival order, in place.
    @inline(__always)
    func forEachValue(named name: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        switch fields {
        case .strings(let headers):
            // Through a buffer pointer: `for header in` would copy (retain and release) both strings of each field.
            headers.withUnsafeBufferPointer { headers in
                for index in headers.indices where SigV4.holds(headers[index].name, name) {
                    var value = headers[index].value
                    value.withUTF8 { body($0) }
                }
            }
        case .bytes(let fields):
            fields.withFields { bytes, fields in
                for field in fields where HeaderFields.equal(bytes, field.name, name) {
                    body(UnsafeBufferPointer(rebasing: bytes[field.value]))
                }
            }
        }
    }

    /// Calls `body` with each value of the header `name` (lower-case), in arrival order, in place.
    @inline(__always)
    func forEachValue(named name: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var name = name
        name.withUTF8 { forEachValue(named: $0, body) }
    }

    /// The first value of a header as bytes, by lower-case name, and how many times the header came.
    func firstBytes(_ name: String) -> (value: [UInt8]?, count: Int) {
        var found: [UInt8]?
        var count = 0
        forEachValue(named: name) { value in
            if found == nil { found = Array(value) }
            count += 1
        }
        return (found, count)
    }

    /// The first value of a header, by lower-case name, and how many times the header came.
    func first(_ name: String) -> (value: String?, count: Int) {
        var found: String?
        var count = 0
        if case .strings(let headers) = fields {
            // The string itself, not a new one from its bytes.
            headers.withUnsafeBufferPointer { headers in
                for index in headers.indices
                where headers[index].name.utf8.count == name.utf8.count
                    && headers[index].name == name
                {
                    if found == nil { found = headers[index].value }
                    count += 1
                }
            }
            return (found, count)
        }
        forEachValue(named: name) { value in
            if found == nil { found = String(decoding: value, as: UTF8.self) }
            count += 1
        }
        return (found, count)
    }

    /// The values of a header, by lower-case name, in arrival order.
    public func values(of name: String) -> [String] {
        var values: [String] = []
        forEachValue(named: name) { values.append(String(decoding: $0, as: UTF8.self)) }
        return values
    }
}

/// The parts of AWS Signature Version 4 that verification needs: canonical request, string to sign, signing key.
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"

    /// The canonical request for `signedHeaders` (lowercase names, sorted as the client listed them).
    public static func canonicalRequest(_ request: SignableRequest, signedHeaders: [String]) -> String {
        let names = Array(signedHeaders.joined(separator: ";").utf8)
        return String(decoding: canonicalRequestBytes(request, signedNames: names[...]), as: UTF8.self)
    }

    /// The canonical request as bytes, written into one buffer: what verification hashes on every call.
    /// `signedNames` is the SignedHeaders list as the canonical request ends with it: lower-case names separated by
    /// `;`, none empty.
    static func canonicalRequestBytes(_ request: SignableRequest, signedNames: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(512)
        appendCanonicalRequest(request, signedNames: signedNames, to: &out)
        return out
    }

    /// ``canonicalRequestBytes(_:signedNames:)`` appended to `out`.
    static func appendCanonicalRequest(
        _ request: SignableRequest,
        signedNames: ArraySlice<UInt8>,
        to out: inout [UInt8]
    ) {
        appendUTF8(request.method, to: &out)
        out.append(UInt8(ascii: "\n"))
        if request.pathIsCanonical {
            appendUTF8(request.path, to: &out)
        } else {
            appendCanonicalURI(request.path, to: &out)
        }
        out.append(UInt8(ascii: "\n"))
        if !request.query.isEmpty { appendUTF8(canonicalQuery(request.query), to: &out) }
        out.append(UInt8(ascii: "\n"))
        signedNames.withUnsafeBufferPointer { names in
            forEachPart(of: names, separatedBy: UInt8(ascii: ";")) { range in
                let name = UnsafeBufferPointer(rebasing: names[range])
                out.append(contentsOf: name)
                out.append(UInt8(ascii: ":"))
                var first = true
                request.forEachValue(named: name) { value in
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    appendCanonicalHeaderValue(value, to: &out)
                }
                out.append(UInt8(ascii: "\n"))
            }
        }
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: signedNames)
        out.append(UInt8(ascii: "\n"))
        switch request.payload {
        case .hex(let text): appendUTF8(text, to: &out)
        case .digest(let digest): appendHex(digest: digest, to: &out)
        }
    }

    /// Calls `body` with the range of each part of `bytes` between `separator`s, empty parts included.
    @inline(__always)
    static func forEachPart<Bytes: Collection<UInt8>>(
        of bytes: Bytes,
        separatedBy separator: UInt8,
        _ body: (Range<Int>) -> Void
    ) where Bytes.Index == Int {
        var start = bytes.startIndex
        for end in bytes.startIndex...bytes.endIndex where end == bytes.endIndex || bytes[end] == separator {
            body(start..<end)
            start = end + 1
        }
    }

    /// Whether `text` is made of exactly `bytes`: lengths first (most header names differ in length), then the
    /// bytes in place.
    @inline(__always)
    static func holds(_ text: some StringProtocol, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.utf8.count == bytes.count else { return false }
        return text.utf8.withContiguousStorageIfAvailable { Bytes.equal($0, bytes) }
            ?? text.utf8.elementsEqual(bytes)
    }

    /// A string's UTF-8 appended in one copy from its contiguous storage (`append(contentsOf: text.utf8)` goes
    /// byte by byte through the view's iterator).
    @inline(__always)
    static func appendUTF8(_ text: some StringProtocol, to out: inout [UInt8]) {
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { out.append(contentsOf: $0) }
        if copied == nil { out.append(contentsOf: text.utf8) }
    }

    public static func stringToSign(canonicalRequest: String, amzDate: String, scope: String) -> String {
        String(
            decoding: stringToSignBytes(
                canonicalRequest: Array(canonicalRequest.utf8),
                amzDate: amzDate,
                scope: Array(scope.utf8)[...]
            ),
            as: UTF8.self
        )
    }

    static func stringToSignBytes(canonicalRequest: [UInt8], amzDate: String, scope: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(160)
        appendStringToSign(
            canonicalRequestDigest: canonicalRequest.withUnsafeBytes { sha256($0) },
            amzDate: amzDate,
            scope: scope,
            to: &out
        )
        return out
    }

    /// The string to sign, from the canonical request's digest, appended to `out`.
    static func appendStringToSign(
        canonicalRequestDigest: SHA256Digest,
        amzDate: String,
        scope: ArraySlice<UInt8>,
        to out: inout [UInt8]
    ) {
        appendUTF8(algorithm, to: &out)
        out.append(UInt8(ascii: "\n"))
        appendUTF8(amzDate, to: &out)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: scope)
        out.append(UInt8(ascii: "\n"))
        appendHex(digest: canonicalRequestDigest, to: &out)
    }

    /// The HMAC chain `AWS4<secret>` → date → region → service → `aws4_request`: the signing key's 32 bytes.
    public static func signingKey(secret: String, date: String, region: String, service: String) -> [UInt8] {
        var key = Array("AWS4\(secret)".utf8)
        for part in [date, region, service, "aws4_request"] {
            key = Array(KeyedHMACSHA256(key: key).authenticationCode(for: Array(part.utf8)))
        }
        return key
    }

    public static func signature(stringToSign: String, key: [UInt8]) -> String {
        String(decoding: signatureBytes(stringToSign: Array(stringToSign.utf8), key: key), as: UTF8.self)
    }

    /// The signature as lowercase hex bytes.
    static func signatureBytes(stringToSign: [UInt8], key: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64)
        appendHex(digest: KeyedHMACSHA256(key: key).authenticationCode(for: stringToSign), to: &out)
        return out
    }

    public static func hexSHA256(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { hexSHA256($0) } }

    /// The hash of bytes in place (a request body in its buffer), as lowercase hex.
    public static func hexSHA256(_ bytes: UnsafeRawBufferPointer) -> String {
        sha256(bytes).withUnsafeBytes { hex($0) }
    }

    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest { SHA256Hasher.hash(bytes) }

    /// `bytes` as lowercase hex, written straight into the string's storage.
    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { text in
            writeHex(bytes, to: text, at: 0)
            return bytes.count * 2
        }
    }

    /// A digest or MAC as lowercase hex, read through its bytes in place (iterating it as a `Sequence` would copy
    /// it into an array first).
    static func appendHex(digest: some ContiguousBytes, to out: inout [UInt8]) {
        digest.withUnsafeBytes { bytes in
            // Written in place: two `append`s per byte would check capacity and uniqueness 64 times.
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: bytes.count * 2))
            out.withUnsafeMutableBufferPointer { writeHex(bytes, to: $0, at: start) }
        }
    }

    /// `bytes` as lowercase hex into `text` from `start` (room for two digits per byte).
    @inline(__always)
    private static func writeHex(
        _ bytes: UnsafeRawBufferPointer,
        to text: UnsafeMutableBufferPointer<UInt8>,
        at start: Int
    ) {
        for (index, byte) in bytes.enumerated() {
            text[start + 2 * index] = UInt8.lowercaseHexDigit(byte >> 4)
            text[start + 2 * index + 1] = UInt8.lowercaseHexDigit(byte & 0x0F)
        }
    }

    /// The path with dot segments and empty segments removed, each byte outside the unreserved set
    /// percent-encoded (so an already-encoded path is encoded again, as AWS does for every service but S3).
    static func appendCanonicalURI(_ path: String, to out: inout [UInt8]) {
        let start = out.count
        // On the path's contiguous UTF-8 with integer offsets: this runs on every request. Each kept segment starts
        // with the only unencoded `/` in it, so `..` drops from the last `/` written since `start`.
        var path = path
        path.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                var end = index
                while end < bytes.count, bytes[end] != UInt8(ascii: "/") { end += 1 }
                let segment = UnsafeBufferPointer(rebasing: bytes[index..<end])
                index = end + 1
                if segment.isEmpty || (segment.count == 1 && segment[0] == UInt8(ascii: ".")) { continue }
                if segment.count == 2, segment[0] == UInt8(ascii: "."), segment[1] == UInt8(ascii: ".") {
                    if let last = out[start...].lastIndex(of: UInt8(ascii: "/")) { out.removeSubrange(last...) }
                    continue
                }
                out.append(UInt8(ascii: "/"))
                appendURIEncoded(segment, to: &out)
            }
        }
        if out.count == start {
            out.append(UInt8(ascii: "/"))
        } else if path.utf8.last == UInt8(ascii: "/") {
            out.append(UInt8(ascii: "/"))
        }
    }

    /// Query parameters decoded, re-encoded with AWS's rules and sorted by name, then value.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        var pairs: [(String, String)] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = uriEncode(percentDecode(parts[0]))
            let value = parts.count > 1 ? uriEncode(percentDecode(parts[1])) : ""
            pairs.append((name, value))
        }
        pairs.sort { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Trims a header value and folds runs of spaces and tabs into one space.
    static func appendCanonicalHeaderValue(_ value: String, to out: inout [UInt8]) {
        var value = value
        value.withUTF8 { appendCanonicalHeaderValue($0, to: &out) }
    }

    /// ``appendCanonicalHeaderValue(_:to:)`` of a value's bytes.
    static func appendCanonicalHeaderValue(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var first = 0
        var last = bytes.count
        while first < last, isBlank(bytes[first]) { first += 1 }
        while last > first, isBlank(bytes[last - 1]) { last -= 1 }
        // Usually nothing inside needs folding: then the value goes in with one copy.
        var folds = false
        var index = first
        while index < last {
            if bytes[index] == UInt8(ascii: "\t")
                || (bytes[index] == UInt8(ascii: " ") && isBlank(bytes[index + 1]))
            {
                folds = true
                break
            }
            index += 1
        }
        guard folds else {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[first..<last]))
            return
        }
        var pendingSpace = false
        for byte in bytes[first..<last] {
            if isBlank(byte) {
                pendingSpace = true
            } else {
                if pendingSpace { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                out.append(byte)
            }
        }
    }

    static func uriEncode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        appendURIEncoded(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static let upperHexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func appendURIEncoded(_ bytes: some Sequence<UInt8>, to out: inout [UInt8]) {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(upperHexDigits[Int(byte >> 4)])
                out.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
    }

    static func percentDecode(_ text: Substring) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out = [UInt8]()
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = bytes[index + 1].hexDigitValue, let low = bytes[index + 2].hexDigitValue
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }
}

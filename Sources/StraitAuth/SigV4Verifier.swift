public import Foundation
public import StraitCore

/// Looks up the secret of an access key.
public protocol CredentialProvider: Sendable {
    func secretAccessKey(for accessKeyID: String) -> String?
}

/// A fixed set of access keys.
public struct StaticCredentialProvider: CredentialProvider {
    private let secrets: [String: String]

    public init(_ credentials: [Credentials]) {
        secrets = Dictionary(credentials.map { ($0.accessKeyID, $0.secretAccessKey) }, uniquingKeysWith: { a, _ in a })
    }

    public func secretAccessKey(for accessKeyID: String) -> String? { secrets[accessKeyID] }
}

/// Checks AWS Signature Version 4 on incoming requests, answering failures with the errors and wording AWS uses.
/// A class: the data plane calls it on every invocation, and a struct of two strings and two existentials was
/// copied (four retains and releases) for each call.
public final class SigV4Verifier: Sendable {
    public let region: String
    public let service: String
    public let credentials: any CredentialProvider
    public let clock: any WallClock
    /// How far the request's time may be from ours: 5 minutes, as AWS allows.
    public let allowedSkew: TimeInterval

    public init(
        region: String,
        service: String,
        credentials: any CredentialProvider,
        clock: any WallClock = SystemWallClock(),
        allowedSkew: TimeInterval = 300
    ) {
        self.region = region
        self.service = service
        self.credentials = credentials
        self.clock = clock
        self.allowedSkew = allowedSkew
    }

    /// Verifies the request's Authorization header and returns the access key that signed it.
    /// - Throws: a `ServiceError` with HTTP status 403 and AWS's code and message for the failure.
    public func verify(_ request: SignableRequest, keyCache: SigningKeyCache? = nil) throws(ServiceError) -> String {
        // As bytes: ParsedAuthorization works on its own copy, and no String is made unless an error quotes it.
        let (found, authorizationCount) = request.firstBytes("authorization")
        guard let authorization = found, !authorization.isEmpty else {
            throw Self.error("MissingAuthenticationTokenException", "Request is missing Authentication Token")
        }
        guard authorizationCount == 1 else {
            throw Self.error("IncompleteSignatureException", "The request has more than one Authorization header.")
        }
        let header = try ParsedAuthorization(consume authorization)
        let (amzDate, signedAt) = try requestDate(request)

        let scope = header.scope
        guard scope.count == 5, !scope[0].isEmpty else {
            throw Self.error(
                "IncompleteSignatureException",
                "Credential should be scoped to a valid region, not ''. Authorization=\(Self.authorizationText(request))"
            )
        }
        let (accessKeyID, date, scopeRegion, scopeService, terminator) = (
            scope[0], scope[1], scope[2], scope[3], scope[4]
        )
        guard header.holds("aws4_request", at: terminator) else {
            throw Self.error(
                "InvalidSignatureException",
                "Credential should be scoped with a valid terminator: 'aws4_request', not '\(header.string(terminator))'. "
            )
        }
        guard header.holds(service, at: scopeService) else {
            throw Self.error(
                "InvalidSignatureException",
                "Credential should be scoped to correct service: '\(service)'. "
            )
        }
        guard header.holds(region, at: scopeRegion) else {
            throw Self.error(
                "InvalidSignatureException",
                "Credential should be scoped to a valid region, not '\(header.string(scopeRegion))'. "
            )
        }
        // amzDate is ASCII and 16 long (checked, or formatted, by requestDate). Its first 8 bytes compared in place:
        // `amzDate.prefix(8)` walks Characters, and `header.holds(Substring(amzDate.utf8.prefix(8)), at:)` measured
        // 60–70 ns slower per verification (`--verify-only`).
        let dateMatches = amzDate.utf8.withContiguousStorageIfAvailable { text in
            header.bytes.withUnsafeBufferPointer {
                Bytes.equal(UnsafeBufferPointer(rebasing: text[0..<8]), UnsafeBufferPointer(rebasing: $0[date]))
            }
        }
        guard dateMatches ?? header.holds(amzDate.prefix(8), at: date) else {
            throw Self.error(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '\(header.string(date))' != '\(amzDate.prefix(8))', from '\(amzDate)'."
            )
        }
        let keyID = keyCache?.lastAccessKeyID(in: header, at: accessKeyID) ?? header.string(accessKeyID)
        guard let secret = credentials.secretAccessKey(for: keyID) else {
            throw Self.error("UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        try checkSkew(signedAt, amzDate: amzDate)

        // The first declared x-amz-content-sha256, compared in place.
        var declaredHashMatches: Bool?
        request.forEachValue(named: "x-amz-content-sha256") { declared in
            if declaredHashMatches == nil { declaredHashMatches = request.payloadHashIs(declared) }
        }
        if declaredHashMatches == false {
            throw Self.error(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        }
        // The canonical request and then the string to sign, built one after the other in the same bytes (the loop's
        // scratch array when there is one).
        var message = keyCache?.takeScratch() ?? []
        message.reserveCapacity(512)
        SigV4.appendCanonicalRequest(request, signedNames: header.bytes[header.signedHeaders], to: &message)
        let canonicalDigest = message.withUnsafeBytes { SigV4.sha256($0) }
        message.removeAll(keepingCapacity: true)
        // The scope as signed: the credential after the access key.
        SigV4.appendStringToSign(
            canonicalRequestDigest: canonicalDigest,
            amzDate: amzDate,
            scope: header.bytes[(accessKeyID.upperBound + 1)..<header.credential.upperBound],
            to: &message
        )
        defer { keyCache?.keepScratch(message) }
        let day = header.string(date)
        // A local function, not a closure in a constant: its captures stay on the stack.
        func derive() -> [UInt8] { SigV4.signingKey(secret: secret, date: day, region: region, service: service) }
        let mac = keyCache?.hmac(accessKeyID: keyID, date: day, derive: derive) ?? KeyedHMACSHA256(key: derive())
        let matches = message.withUnsafeBytes { message in
            mac.authenticationCode(for: message).withUnsafeBytes {
                Self.constantTimeHexEqual($0, header.bytes[header.signature])
            }
        }
        guard matches else {
            throw Self.error(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            )
        }
        return keyID
    }

    /// The request's date as SigV4 signs it (`yyyyMMdd'T'HHmmss'Z'`) and as an instant, parsed once.
    private func requestDate(_ request: SignableRequest) throws(ServiceError) -> (text: String, instant: Date) {
        if let amzDate = request.first("x-amz-date").value {
            guard let instant = Self.parseAmzDate(amzDate) else {
                throw Self.error(
                    "IncompleteSignatureException",
                    "Date must be in ISO-8601 'basic format'. Got '\(amzDate)'. See http://en.wikipedia.org/wiki/ISO_8601"
                )
            }
            return (amzDate, instant)
        }
        if let date = request.first("date").value, let parsed = Self.parseHTTPDate(date) {
            return (Self.formatAmzDate(parsed), parsed)
        }
        throw Self.error(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=\(Self.authorizationText(request))"
        )
    }

    private func checkSkew(_ signed: Date, amzDate: String) throws(ServiceError) {
        let now = clock.now()
        let minutes = Int(allowedSkew / 60)
        if signed < now.addingTimeInterval(-allowedSkew) {
            throw Self.error(
                "InvalidSignatureException",
                "Signature expired: \(amzDate) is now earlier than \(Self.formatAmzDate(now.addingTimeInterval(-allowedSkew))) (\(Self.formatAmzDate(now)) - \(minutes) min.)"
            )
        }
        if signed > now.addingTimeInterval(allowedSkew) {
            throw Self.error(
                "InvalidSignatureException",
                "Signature not yet current: \(amzDate) is still later than \(Self.formatAmzDate(now.addingTimeInterval(allowedSkew))) (\(Self.formatAmzDate(now)) + \(minutes) min.)"
            )
        }
    }

    /// The request's (first) Authorization header as text, for an error message.
    private static func authorizationText(_ request: SignableRequest) -> String {
        request.first("authorization").value ?? ""
    }

    static func error(_ code: String, _ message: String) -> ServiceError {
        ServiceError(code: code, message: message, status: 403)
    }

    /// Whether `hex` is the lowercase hex form of `bytes`, in time that depends only on the lengths.
    static func constantTimeHexEqual(_ bytes: UnsafeRawBufferPointer, _ hex: ArraySlice<UInt8>) -> Bool {
        hex.withUnsafeBufferPointer { constantTimeHexEqual(bytes, $0) }
    }

    static func constantTimeHexEqual(_ bytes: UnsafeRawBufferPointer, _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.count == bytes.count * 2 else { return false }
        var difference: UInt8 = 0
        for (index, byte) in bytes.enumerated() {
            difference |= text[2 * index] ^ UInt8.lowercaseHexDigit(byte >> 4)
            difference |= text[2 * index + 1] ^ UInt8.lowercaseHexDigit(byte & 0x0F)
        }
        return difference == 0
    }

    /// Parses `yyyyMMdd'T'HHmmss'Z'` (UTC) by arithmetic: no Calendar on the request path. Dates that do not exist
    /// (February 30th, hour 24, second 60) are refused.
    public static func parseAmzDate(_ text: String) -> Date? {
        switch text.utf8.withContiguousStorageIfAvailable({ parseAmzDate($0) }) {
        case .some(let date): date
        case .none: Array(text.utf8).withUnsafeBufferPointer { parseAmzDate($0) }
        }
    }

    private static func parseAmzDate(_ bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
            let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
            (1...12).contains(month), day >= 1, day <= daysInMonth(year, month), hour < 24, minute < 60, second < 60
        else { return nil }
        let days = CivilCalendar.daysFromCivil(year, month, day)
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3_600 + minute * 60 + second))
    }

    /// Formats `yyyyMMdd'T'HHmmss'Z'` (UTC) by arithmetic.
    public static func formatAmzDate(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let remainder = seconds - days * 86_400
        let (year, month, day) = CivilCalendar.civilFromDays(days)
        var out = [UInt8]()
        out.reserveCapacity(16)
        func append(_ value: Int, width: Int) {
            var digits = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            var rest = value
            for index in stride(from: width - 1, through: 0, by: -1) {
                digits[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            out += digits
        }
        append(year, width: 4)
        append(month, width: 2)
        append(day, width: 2)
        out.append(UInt8(ascii: "T"))
        append(remainder / 3_600, width: 2)
        append(remainder / 60 % 60, width: 2)
        append(remainder % 60, width: 2)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

}

/// Signing keys already derived, by access key and date: the HMAC chain runs once a day per key instead of on every
/// request. Not thread-safe: each event loop keeps its own.
// @unchecked Sendable: used from one event loop only (the data plane keeps one per loop).
public final class SigningKeyCache: @unchecked Sendable {
    private struct Name: Hashable {
        var accessKeyID: String
        var date: String
    }

    private var keyed: [Name: KeyedHMACSHA256] = [:]
    /// The key used last: a client signs call after call with the same one, and comparing two short strings costs
    /// less than hashing them.
    private var last: (name: Name, hmac: KeyedHMACSHA256)?

    /// Bytes for the next verification's canonical request and string to sign, kept between calls.
    private var scratch: [UInt8] = []

    public init() {}

    /// The scratch array, empty, with the capacity it had.
    func takeScratch() -> [UInt8] {
        var bytes: [UInt8] = []
        swap(&bytes, &scratch)
        bytes.removeAll(keepingCapacity: true)
        return bytes
    }

    /// Keeps `bytes` for the next ``takeScratch()`` unless it grew large (a request with very long headers).
    func keepScratch(_ bytes: [UInt8]) {
        if bytes.capacity <= 8192 { scratch = bytes }
    }

    /// The access key ID used last, when the header holds it at `range`: a client signs call after call with the
    /// same key, and this spares a new string for it on each.
    func lastAccessKeyID(in header: ParsedAuthorization, at range: Range<Int>) -> String? {
        guard let known = last?.name.accessKeyID, header.holds(known, at: range) else { return nil }
        return known
    }

    func hmac(accessKeyID: String, date: String, derive: () -> [UInt8]) -> KeyedHMACSHA256 {
        // Compared in place: `if let last` would copy the name's two strings (and the 224-byte state) first.
        if last?.name.accessKeyID == accessKeyID, last?.name.date == date, let hmac = last?.hmac { return hmac }
        let name = Name(accessKeyID: accessKeyID, date: date)
        let hmac: KeyedHMACSHA256
        if let known = keyed[name] {
            hmac = known
        } else {
            if keyed.count >= 64 { keyed.removeAll() }
            hmac = KeyedHMACSHA256(key: derive())
            keyed[name] = hmac
        }
        last = (name, hmac)
        return hmac
    }
}

/// The three parts of an `AWS4-HMAC-SHA256` Authorization header, found in one copy of its bytes: parsing allocates
/// only that copy (the credential's parts are ranges held inline), and strings are made only of what is needed as a
/// string.
struct ParsedAuthorization {
    /// The header's bytes; signed header names lower-cased (and, if the list had empty names, the list without them
    /// appended).
    let bytes: [UInt8]
    let credential: Range<Int>
    /// The credential's `/`-separated parts (access key, date, region, service, terminator when well formed).
    let scope: ScopeParts
    /// Lower-case names separated by `;`, none empty: as the canonical request lists them.
    let signedHeaders: Range<Int>
    let signature: Range<Int>

    /// The first bytes of every SigV4 Authorization header: the algorithm and a space.
    private static let prefix = Array((SigV4.algorithm + " ").utf8)

    /// Reads an Authorization header's bytes (consumed: the names are lower-cased in them).
    init(_ header: consuming [UInt8]) throws(ServiceError) {
        var bytes = consume header
        // Only errors quote the header; they are all raised before the bytes change.
        var text: String { String(decoding: bytes, as: UTF8.self) }
        guard bytes.starts(with: Self.prefix) else {
            let algorithm = text.split(separator: " ", maxSplits: 1).first.map(String.init) ?? text
            throw SigV4Verifier.error(
                "IncompleteSignatureException",
                "Unsupported AWS 'algorithm': '\(algorithm)'. Use AWS4-HMAC-SHA256."
            )
        }
        // Split on ',' and '=' with spaces trimmed, keeping only the three fields SigV4 uses.
        var fields: (credential: Range<Int>?, signature: Range<Int>?, signedHeaders: Range<Int>?) = (nil, nil, nil)
        var index = Self.prefix.count
        while index < bytes.count {
            let end = Self.firstIndex(of: UInt8(ascii: ","), in: bytes, from: index) ?? bytes.count
            var first = index
            var last = end
            while first < last, bytes[first] == UInt8(ascii: " ") { first += 1 }
            while last > first, bytes[last - 1] == UInt8(ascii: " ") { last -= 1 }
            index = end + 1
            guard first < last else { continue }
            guard let equals = Self.firstIndex(of: UInt8(ascii: "="), in: bytes, from: first), equals < last else {
                throw SigV4Verifier.error(
                    "IncompleteSignatureException",
                    "'\(String(decoding: bytes[first..<last], as: UTF8.self))' not a valid key=value pair (missing equal-sign) in Authorization header: '\(text)'."
                )
            }
            let key = first..<equals
            let value = (equals + 1)..<last
            bytes.withUnsafeBufferPointer { all in
                let key = UnsafeBufferPointer(rebasing: all[key])
                if SigV4.holds("Credential", key) {
                    fields.credential = value
                } else if SigV4.holds("Signature", key) {
                    fields.signature = value
                } else if SigV4.holds("SignedHeaders", key) {
                    fields.signedHeaders = value
                }
            }
        }
        guard let credential = fields.credential, !credential.isEmpty, let signature = fields.signature,
            !signature.isEmpty, var signed = fields.signedHeaders, !signed.isEmpty
        else {
            var missing: [String] = []
            for (name, value) in [
                ("Credential", fields.credential), ("Signature", fields.signature),
                ("SignedHeaders", fields.signedHeaders),
            ] where value?.isEmpty ?? true {
                missing.append("Authorization header requires '\(name)' parameter.")
            }
            throw SigV4Verifier.error(
                "IncompleteSignatureException",
                missing.joined(separator: " ") + " Authorization=\(text)"
            )
        }
        // Names lower-cased in place; a list with empty names ("a;;b", ";a") is rewritten without them at the end.
        for position in signed where bytes[position] >= UInt8(ascii: "A") && bytes[position] <= UInt8(ascii: "Z") {
            bytes[position] |= 0x20
        }
        var hasEmptyName = false
        var hasHost = false
        SigV4.forEachPart(of: bytes[signed], separatedBy: UInt8(ascii: ";")) { name in
            if name.isEmpty { hasEmptyName = true }
            if bytes.withUnsafeBufferPointer({ SigV4.holds("host", UnsafeBufferPointer(rebasing: $0[name])) }) {
                hasHost = true
            }
        }
        if hasEmptyName {
            let names = bytes[signed].split(separator: UInt8(ascii: ";"))
            let start = bytes.count
            for (number, name) in names.enumerated() {
                if number > 0 { bytes.append(UInt8(ascii: ";")) }
                bytes.append(contentsOf: name)
            }
            signed = start..<bytes.count
        }
        guard hasHost else {
            throw SigV4Verifier.error(
                "InvalidSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        }
        var scope = ScopeParts()
        SigV4.forEachPart(of: bytes[credential], separatedBy: UInt8(ascii: "/")) { scope.append($0) }
        self.bytes = bytes
        self.credential = credential
        self.scope = scope
        self.signedHeaders = signed
        self.signature = signature
    }

    func string(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    /// The index of the first `byte` in `bytes` at or after `start` (memchr, not a byte loop).
    private static func firstIndex(of byte: UInt8, in bytes: [UInt8], from start: Int) -> Int? {
        bytes.withUnsafeBytes { Bytes.firstIndex(of: byte, in: $0, from: start) }
    }

    /// Whether the bytes at `range` are `text`'s UTF-8.
    func holds(_ text: some StringProtocol, at range: Range<Int>) -> Bool {
        bytes.withUnsafeBufferPointer { SigV4.holds(text, UnsafeBufferPointer(rebasing: $0[range])) }
    }
}

/// The parts of a credential scope, held inline: a well-formed one has five, and only the count of any beyond the
/// fifth matters (it makes the scope invalid).
struct ScopeParts {
    private var parts: (Range<Int>, Range<Int>, Range<Int>, Range<Int>, Range<Int>) = (
        0..<0, 0..<0, 0..<0, 0..<0, 0..<0
    )
    private(set) var count = 0

    mutating func append(_ part: Range<Int>) {
        switch count {
        case 0: parts.0 = part
        case 1: parts.1 = part
        case 2: parts.2 = part
        case 3: parts.3 = part
        case 4: parts.4 = part
        default: break
        }
        count += 1
    }

    /// Part `index` (0 to 4) of a scope that has at least `index + 1` parts.
    subscript(index: Int) -> Range<Int> {
        precondition(index < min(count, 5), "scope part \(index) of \(count)")
        return switch index {
        case 0: parts.0
        case 1: parts.1
        case 2: parts.2
        case 3: parts.3
        default: parts.4
        }
    }
}

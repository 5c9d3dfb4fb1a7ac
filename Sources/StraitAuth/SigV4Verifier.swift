import Crypto
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
public struct SigV4Verifier: Sendable {
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
    public func verify(_ request: SignableRequest) throws(ServiceError) -> String {
        let authorizations = request.values(of: "authorization")
        guard let authorization = authorizations.first, !authorization.isEmpty else {
            throw Self.error("MissingAuthenticationTokenException", "Request is missing Authentication Token")
        }
        guard authorizations.count == 1 else {
            throw Self.error("IncompleteSignatureException", "The request has more than one Authorization header.")
        }
        let header = try ParsedAuthorization(authorization)
        let amzDate = try requestDate(request, authorization: authorization)

        let scope = header.credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, !scope[0].isEmpty else {
            throw Self.error(
                "IncompleteSignatureException",
                "Credential should be scoped to a valid region, not ''. Authorization=\(authorization)"
            )
        }
        let (accessKeyID, date, scopeRegion, scopeService, terminator) = (
            scope[0], scope[1], scope[2], scope[3], scope[4]
        )
        guard terminator == "aws4_request" else {
            throw Self.error(
                "InvalidSignatureException",
                "Credential should be scoped with a valid terminator: 'aws4_request', not '\(terminator)'. "
            )
        }
        guard scopeService == service else {
            throw Self.error(
                "InvalidSignatureException",
                "Credential should be scoped to correct service: '\(service)'. "
            )
        }
        guard scopeRegion == region else {
            throw Self.error(
                "InvalidSignatureException",
                "Credential should be scoped to a valid region, not '\(scopeRegion)'. "
            )
        }
        guard amzDate.hasPrefix(date), date.count == 8 else {
            throw Self.error(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '\(date)' != '\(amzDate.prefix(8))', from '\(amzDate)'."
            )
        }
        guard let secret = credentials.secretAccessKey(for: accessKeyID) else {
            throw Self.error("UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        try checkSkew(amzDate)

        if let declared = request.values(of: "x-amz-content-sha256").first, declared != request.payloadHash {
            throw Self.error(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        }
        let canonical = SigV4.canonicalRequest(request, signedHeaders: header.signedHeaders)
        let toSign = SigV4.stringToSign(
            canonicalRequest: canonical,
            amzDate: amzDate,
            scope: scope[1...].joined(separator: "/")
        )
        let key = SigV4.signingKey(secret: secret, date: date, region: region, service: service)
        let expected = SigV4.signature(stringToSign: toSign, key: key)
        guard Self.constantTimeEqual(expected, header.signature) else {
            throw Self.error(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            )
        }
        return accessKeyID
    }

    private func requestDate(_ request: SignableRequest, authorization: String) throws(ServiceError) -> String {
        if let amzDate = request.values(of: "x-amz-date").first {
            guard Self.parseAmzDate(amzDate) != nil else {
                throw Self.error(
                    "IncompleteSignatureException",
                    "Date must be in ISO-8601 'basic format'. Got '\(amzDate)'. See http://en.wikipedia.org/wiki/ISO_8601"
                )
            }
            return amzDate
        }
        if let date = request.values(of: "date").first, let parsed = Self.parseHTTPDate(date) {
            return Self.formatAmzDate(parsed)
        }
        throw Self.error(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=\(authorization)"
        )
    }

    private func checkSkew(_ amzDate: String) throws(ServiceError) {
        guard let signed = Self.parseAmzDate(amzDate) else { return }
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

    static func error(_ code: String, _ message: String) -> ServiceError {
        ServiceError(code: code, message: message, status: 403)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    /// Parses `yyyyMMdd'T'HHmmss'Z'`.
    public static func parseAmzDate(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
            let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var components = DateComponents()
        (components.year, components.month, components.day) = (year, month, day)
        (components.hour, components.minute, components.second) = (hour, minute, second)
        // Reject dates the calendar would roll over (February 30th, second 60): they must read back unchanged.
        guard let date = utcCalendar.date(from: components), formatAmzDate(date) == text else { return nil }
        return date
    }

    public static func formatAmzDate(_ date: Date) -> String {
        let c = utcCalendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return
            "\(pad(c.year, 4))\(pad(c.month, 2))\(pad(c.day, 2))T\(pad(c.hour, 2))\(pad(c.minute, 2))\(pad(c.second, 2))Z"
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    private static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }()
}

/// The three parts of an `AWS4-HMAC-SHA256` Authorization header.
struct ParsedAuthorization {
    let credential: String
    let signedHeaders: [String]
    let signature: String

    init(_ header: String) throws(ServiceError) {
        let prefix = SigV4.algorithm + " "
        guard header.hasPrefix(prefix) else {
            let algorithm = header.split(separator: " ", maxSplits: 1).first.map(String.init) ?? header
            throw SigV4Verifier.error(
                "IncompleteSignatureException",
                "Unsupported AWS 'algorithm': '\(algorithm)'. Use AWS4-HMAC-SHA256."
            )
        }
        var fields: [String: String] = [:]
        for part in header.dropFirst(prefix.count).split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw SigV4Verifier.error(
                    "IncompleteSignatureException",
                    "'\(trimmed)' not a valid key=value pair (missing equal-sign) in Authorization header: '\(header)'."
                )
            }
            fields[String(trimmed[..<equals])] = String(trimmed[trimmed.index(after: equals)...])
        }
        var missing: [String] = []
        for name in ["Credential", "Signature", "SignedHeaders"] where (fields[name] ?? "").isEmpty {
            missing.append("Authorization header requires '\(name)' parameter.")
        }
        guard missing.isEmpty, let credential = fields["Credential"], let signature = fields["Signature"],
            let signed = fields["SignedHeaders"]
        else {
            throw SigV4Verifier.error(
                "IncompleteSignatureException",
                missing.joined(separator: " ") + " Authorization=\(header)"
            )
        }
        let names = signed.split(separator: ";").map { $0.lowercased() }
        guard names.contains("host") else {
            throw SigV4Verifier.error(
                "InvalidSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        }
        self.credential = credential
        self.signedHeaders = names
        self.signature = signature
    }
}

import Foundation
import StraitAuth
import StraitCore
import StraitTestSupport
import Testing

extension SigV4TestSuiteVector: CustomTestStringConvertible {
    var testDescription: String { name }
}

/// A published test-suite request, read from its raw `.req` text.
struct RawRequest {
    var method: String
    var target: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// Reads `METHOD TARGET HTTP/1.1`, then `Name:value` lines (repeated names kept in order), then the body after a
    /// blank line. The target runs from the first space to the last one, so a bare space in the path (get-space)
    /// stays in it, as does raw UTF-8 (get-utf8).
    init(_ text: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
        let firstLine = lines.popFirst()
        let requestLine = try #require(firstLine)
        let first = try #require(requestLine.firstIndex(of: " "))
        let last = try #require(requestLine.lastIndex(of: " "))
        try #require(first < last)
        #expect(requestLine[requestLine.index(after: last)...] == "HTTP/1.1")
        method = String(requestLine[..<first])
        target = String(requestLine[requestLine.index(after: first)..<last])
        headers = []
        while let line = lines.popFirst(), !line.isEmpty {
            let colon = try #require(line.firstIndex(of: ":"), "header line without ':' \(line)")
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        body = Array(lines.joined(separator: "\n").utf8)
    }

    func signable(adding extra: [(name: String, value: String)] = []) -> SignableRequest {
        SignableRequest(method: method, target: target, headers: headers + extra, body: body)
    }
}

/// The parts of an `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header a test needs.
func authorizationField(_ name: String, of authorization: String) throws -> String {
    let marker = name + "="
    let start = try #require(authorization.range(of: marker), "no \(name) in \(authorization)")
    let rest = authorization[start.upperBound...]
    return String(rest.prefix { $0 != "," })
}

/// AWS's Signature Version 4 test suite (credentials AKIDEXAMPLE, us-east-1, service "service", 20150830T123600Z):
/// every step of SigV4 must reproduce the published canonical request, string to sign and signature.
@Suite struct SigV4TestSuiteTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let scope = "20150830/us-east-1/service/aws4_request"

    /// A verifier for the suite's credentials, at the suite's signing time.
    static func verifier() -> SigV4Verifier {
        SigV4Verifier(
            region: "us-east-1",
            service: "service",
            credentials: StaticCredentialProvider([
                Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: secret)
            ]),
            clock: TestClock(iso8601: "2015-08-30T12:36:00Z")
        )
    }

    @Test(arguments: sigV4TestSuiteVectors)
    func canonicalRequestStringToSignAndSignature(_ vector: SigV4TestSuiteVector) throws {
        let raw = try RawRequest(vector.request)
        let request = raw.signable()
        let signedHeaders = try authorizationField("SignedHeaders", of: vector.authorization)
            .split(separator: ";").map(String.init)

        let canonical = SigV4.canonicalRequest(request, signedHeaders: signedHeaders)
        #expect(canonical == vector.canonicalRequest)

        let amzDate = try #require(request.values(of: "x-amz-date").first)
        let toSign = SigV4.stringToSign(canonicalRequest: canonical, amzDate: amzDate, scope: Self.scope)
        #expect(toSign == vector.stringToSign)

        let key = SigV4.signingKey(secret: Self.secret, date: "20150830", region: "us-east-1", service: "service")
        let signature = SigV4.signature(stringToSign: toSign, key: key)
        #expect(signature == (try authorizationField("Signature", of: vector.authorization)))
    }

    @Test(arguments: sigV4TestSuiteVectors)
    func verifierAcceptsTheSignedRequest(_ vector: SigV4TestSuiteVector) throws {
        let verifier = Self.verifier()
        let request = try RawRequest(vector.request).signable(adding: [("Authorization", vector.authorization)])
        #expect(try verifier.verify(request) == "AKIDEXAMPLE")
    }

    /// The same requests with their header fields held as one buffer of bytes (as the data plane's parser hands them
    /// over): the same canonical request, and the verifier accepts them — and refuses them once a value changes.
    @Test(arguments: sigV4TestSuiteVectors)
    func headerFieldsAsBytesSignTheSame(_ vector: SigV4TestSuiteVector) throws {
        let raw = try RawRequest(vector.request)
        func request(_ headers: [(name: String, value: String)]) -> SignableRequest {
            SignableRequest(
                method: raw.method,
                target: raw.target,
                fields: HeaderFields(headers),
                payload: .digest(raw.body.withUnsafeBytes { SigV4.sha256($0) })
            )
        }
        let signedHeaders = try authorizationField("SignedHeaders", of: vector.authorization)
            .split(separator: ";").map(String.init)
        #expect(SigV4.canonicalRequest(request(raw.headers), signedHeaders: signedHeaders) == vector.canonicalRequest)
        #expect(request(raw.headers).headers.map(\.name) == raw.headers.map { $0.name.lowercased() })

        let verifier = Self.verifier()
        let authorization = ("Authorization", vector.authorization)
        #expect(try verifier.verify(request(raw.headers + [authorization])) == "AKIDEXAMPLE")
        let dateIndex = try #require(raw.headers.firstIndex { $0.name.lowercased() == "x-amz-date" })
        var tampered = raw.headers
        tampered[dateIndex].value = "20150830T123601Z"
        let error = #expect(throws: ServiceError.self) { try verifier.verify(request(tampered + [authorization])) }
        #expect(error?.code == "InvalidSignatureException")
    }

    /// The published signature belongs to the published request: any change to a signed part breaks it.
    @Test(arguments: sigV4TestSuiteVectors)
    func verifierRejectsTheVectorWithATamperedMethod(_ vector: SigV4TestSuiteVector) throws {
        let verifier = Self.verifier()
        var raw = try RawRequest(vector.request)
        raw.method = raw.method == "GET" ? "PUT" : "GET"
        let error = #expect(throws: ServiceError.self) {
            try verifier.verify(raw.signable(adding: [("Authorization", vector.authorization)]))
        }
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.status == 403)
    }
}

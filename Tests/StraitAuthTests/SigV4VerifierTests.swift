import Foundation
import StraitAuth
import StraitCore
import StraitTestSupport
import Testing

/// Signs requests the way an AWS SDK does, with SigV4's own building blocks, so the verifier can be tested on
/// requests that differ from a valid one in exactly one respect.
struct TestSigner {
    var accessKeyID = "AKIDEXAMPLE"
    var secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    var region = "us-east-1"
    var service = "service"
    var amzDate = "20150830T123600Z"

    static let jsonBody = #"{"ModelName":"my-model","PrimaryContainer":{"Image":"example/image:1"}}"#

    /// The headers an SDK sends for an AWS JSON 1.1 call, without Authorization.
    func headers(extra: [(name: String, value: String)] = []) -> [(name: String, value: String)] {
        [
            ("Host", "example.amazonaws.com"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "SageMaker.CreateModel"),
            ("X-Amz-Date", amzDate),
        ] + extra
    }

    /// The Authorization header for `request`, signing every header it carries.
    func authorization(for request: SignableRequest, signedHeaders: [String]? = nil) -> String {
        let signed = signedHeaders ?? Set(request.headers.map { $0.name.lowercased() }).sorted()
        let date = String(amzDate.prefix(8))
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let canonical = SigV4.canonicalRequest(request, signedHeaders: signed)
        let toSign = SigV4.stringToSign(canonicalRequest: canonical, amzDate: amzDate, scope: scope)
        let key = SigV4.signingKey(secret: secret, date: date, region: region, service: service)
        let signature = SigV4.signature(stringToSign: toSign, key: key)
        return
            "\(SigV4.algorithm) Credential=\(accessKeyID)/\(scope), SignedHeaders=\(signed.joined(separator: ";")), Signature=\(signature)"
    }

    /// A signed `POST /` carrying `body`.
    func signedRequest(
        body: String = TestSigner.jsonBody,
        extraHeaders: [(name: String, value: String)] = []
    ) -> SignableRequest {
        var request = SignableRequest(
            method: "POST",
            target: "/",
            headers: headers(extra: extraHeaders),
            body: Array(body.utf8)
        )
        request.headers.append(("Authorization", authorization(for: request)))
        return request
    }
}

extension TestSigner: CustomTestStringConvertible {
    var testDescription: String { "\(accessKeyID)/\(amzDate.prefix(8))/\(region)/\(service)" }
}

@Suite struct SigV4VerifierTests {
    static let credentials = Credentials(
        accessKeyID: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )

    let verifier = SigV4Verifier(
        region: "us-east-1",
        service: "service",
        credentials: StaticCredentialProvider([Self.credentials]),
        clock: TestClock(iso8601: "2015-08-30T12:36:00Z")
    )

    /// Runs the verifier on a request expected to fail and returns the error, checking it is a 403.
    func failure(_ request: SignableRequest, sourceLocation: SourceLocation = #_sourceLocation) -> ServiceError? {
        let error = #expect(throws: ServiceError.self, sourceLocation: sourceLocation) { try verifier.verify(request) }
        #expect(error?.status == 403, sourceLocation: sourceLocation)
        return error
    }

    @Test func acceptsARequestSignedWithItsOwnFunctions() throws {
        #expect(try verifier.verify(TestSigner().signedRequest()) == "AKIDEXAMPLE")
    }

    @Test func acceptsAnyDateWithinFiveMinutes() throws {
        for date in ["20150830T123100Z", "20150830T124100Z", "20150830T123559Z"] {
            #expect(try verifier.verify(TestSigner(amzDate: date).signedRequest()) == "AKIDEXAMPLE")
        }
    }

    @Test func missingAuthorization() {
        let request = SignableRequest(
            method: "POST",
            target: "/",
            headers: TestSigner().headers(),
            body: Array(TestSigner.jsonBody.utf8)
        )
        let error = failure(request)
        #expect(error?.code == "MissingAuthenticationTokenException")
    }

    @Test func emptyAuthorization() {
        let request = SignableRequest(
            method: "POST",
            target: "/",
            headers: TestSigner().headers(extra: [("Authorization", "")]),
            body: Array(TestSigner.jsonBody.utf8)
        )
        #expect(failure(request)?.code == "MissingAuthenticationTokenException")
    }

    @Test func unknownAccessKey() {
        let error = failure(TestSigner(accessKeyID: "AKIDUNKNOWN").signedRequest())
        #expect(error?.code == "UnrecognizedClientException")
        #expect(error?.message == "The security token included in the request is invalid.")
    }

    @Test func wrongSecret() {
        let error = failure(TestSigner(secret: "not-the-secret").signedRequest())
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.message.contains("The request signature we calculated does not match") == true)
    }

    @Test func bodyChangedAfterSigning() {
        var request = TestSigner().signedRequest()
        let tampered = SignableRequest(
            method: request.method,
            target: "/",
            headers: request.headers,
            body: Array(#"{"ModelName":"other-model","PrimaryContainer":{"Image":"example/image:1"}}"#.utf8)
        )
        request.payloadHash = tampered.payloadHash
        let error = failure(request)
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.message.contains("The request signature we calculated does not match") == true)
    }

    @Test func signedHeaderChangedAfterSigning() throws {
        var request = TestSigner().signedRequest()
        let index = try #require(request.headers.firstIndex { $0.name == "x-amz-target" })
        request.headers[index].value = "SageMaker.DeleteModel"
        #expect(failure(request)?.code == "InvalidSignatureException")
    }

    @Test func unsignedHeaderMayChange() throws {
        let signer = TestSigner()
        var request = SignableRequest(
            method: "POST",
            target: "/",
            headers: signer.headers(),
            body: Array(TestSigner.jsonBody.utf8)
        )
        request.headers.append(
            (
                "Authorization",
                signer.authorization(for: request, signedHeaders: ["host", "x-amz-date", "x-amz-target"])
            )
        )
        request.headers.append(("User-Agent", "added-by-a-proxy"))
        #expect(try verifier.verify(request) == "AKIDEXAMPLE")
    }

    @Test func expiredSignature() throws {
        let error = try #require(failure(TestSigner(amzDate: "20150830T123000Z").signedRequest()))
        #expect(error.code == "InvalidSignatureException")
        #expect(error.message.hasPrefix("Signature expired: 20150830T123000Z is now earlier than "))
        #expect(error.message.hasSuffix(" - 5 min.)"))
        #expect(
            error.message
                == "Signature expired: 20150830T123000Z is now earlier than 20150830T123100Z (20150830T123600Z - 5 min.)"
        )
    }

    @Test func signatureNotYetCurrent() throws {
        let error = try #require(failure(TestSigner(amzDate: "20150830T124200Z").signedRequest()))
        #expect(error.code == "InvalidSignatureException")
        #expect(error.message.hasPrefix("Signature not yet current: 20150830T124200Z is still later than "))
        #expect(error.message.hasSuffix(" + 5 min.)"))
    }

    @Test(arguments: [
        TestSigner(region: "us-west-2"), TestSigner(service: "sagemaker"),
        TestSigner(region: "eu-west-1", service: "s3"),
    ])
    func credentialScopedElsewhere(_ signer: TestSigner) {
        let error = failure(signer.signedRequest())
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.message.contains("Credential should be scoped") == true)
    }

    /// A signed request whose Authorization header (added last) then had `text` replaced with `replacement`.
    func editedAuthorization(_ text: String, _ replacement: String) -> SignableRequest {
        var request = TestSigner().signedRequest()
        let index = request.headers.count - 1
        #expect(request.headers[index].value.contains(text))
        request.headers[index].value = request.headers[index].value.replacingOccurrences(of: text, with: replacement)
        return request
    }

    @Test func scopeDateNotTheRequestDate() {
        let error = failure(editedAuthorization("/20150830/", "/20150829/"))
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.message.contains("Date in Credential scope does not match") == true)
    }

    @Test func otherTerminatorIsNamedInTheError() {
        let error = failure(editedAuthorization("/aws4_request,", "/aws5_request,"))
        #expect(error?.code == "InvalidSignatureException")
        #expect(
            error?.message
                == "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
        )
    }

    @Test(arguments: ["Content-Type;HOST;x-amz-date;X-Amz-Target", ";content-type;;host;x-amz-date;x-amz-target;"])
    func signedHeaderNamesAreReadWithoutRegardToCaseOrEmptyNames(_ list: String) throws {
        let request = editedAuthorization(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target",
            "SignedHeaders=" + list
        )
        #expect(try verifier.verify(request) == "AKIDEXAMPLE")
    }

    static let malformedAuthorizations = [
        "garbage",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=",
        "AWS4-HMAC-SHA1 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date;x-amz-target, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, SignedHeaders=host, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, SignedHeaders=host, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015/us-east-1/service/aws4_request, SignedHeaders=host, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/extra, SignedHeaders=host, Signature=abcd",
        "AWS4-HMAC-SHA256 Credential=////, SignedHeaders=host, Signature=abcd",
        "AWS4-HMAC-SHA256 ,,,,",
        "AWS4-HMAC-SHA256 ===, SignedHeaders=;;;, Signature==",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=\u{1F600}",
        "\u{0}\u{FFFD}",
    ]

    @Test(arguments: malformedAuthorizations)
    func malformedAuthorization(_ authorization: String) {
        let request = SignableRequest(
            method: "POST",
            target: "/",
            headers: TestSigner().headers(extra: [("Authorization", authorization)]),
            body: Array(TestSigner.jsonBody.utf8)
        )
        let error = failure(request)
        #expect(["IncompleteSignatureException", "InvalidSignatureException"].contains(error?.code ?? "none"))
    }

    /// Authorization headers assembled at random from the pieces the parser looks for (and a few it must not trip
    /// on): each is refused with a 403 in AWS's shape, none crashes the verifier. Seeded, so a failure repeats.
    @Test func randomAuthorizationHeadersAreRefusedNotFatal() {
        let pieces = [
            "AWS4-HMAC-SHA256 ", "Credential=", "SignedHeaders=", "Signature=", "AKIDEXAMPLE", "20150830",
            "us-east-1", "service", "aws4_request", "host", "x-amz-date", "HOST", "/", ",", ";", "=", " ", ";;", "//",
            "abcdef0123456789", "\u{1F600}", "é", "\t", "",
        ]
        var random = RoutingRandom(seed: 20_261_130)
        func some(_ count: ClosedRange<Int>, joinedBy separator: String) -> String {
            (0..<Int.random(in: count, using: &random)).map { _ in
                pieces[Int.random(in: 0..<pieces.count, using: &random)]
            }.joined(separator: separator)
        }
        for round in 0..<4_000 {
            var authorization: String
            if round.isMultiple(of: 2) {
                // Well formed, each part right three times in four: gets past the parse to the scope, date, key,
                // canonical request and signature checks.
                let scope = ["AKIDEXAMPLE", "20150830", "us-east-1", "service", "aws4_request"].map { part in
                    Int.random(in: 0..<4, using: &random) == 0 ? some(0...2, joinedBy: "") : part
                }
                authorization =
                    "AWS4-HMAC-SHA256 Credential=\(scope.joined(separator: "/")), SignedHeaders=\(some(0...4, joinedBy: ";"))host;\(some(0...3, joinedBy: ";")), Signature=\(some(1...3, joinedBy: ""))"
            } else {
                authorization = Int.random(in: 0..<4, using: &random) == 0 ? "" : "AWS4-HMAC-SHA256 "
                authorization += some(0...24, joinedBy: "")
            }
            let request = SignableRequest(
                method: "POST",
                target: "/",
                headers: TestSigner().headers(extra: [("Authorization", authorization)]),
                body: []
            )
            guard let error = failure(request) else { continue }
            #expect(error.code.hasSuffix("Exception"), "\(authorization)")
        }
    }

    @Test func missingSignatureIsIncomplete() {
        let authorization =
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date"
        let request = SignableRequest(
            method: "POST",
            target: "/",
            headers: TestSigner().headers(extra: [("Authorization", authorization)]),
            body: []
        )
        let error = failure(request)
        #expect(error?.code == "IncompleteSignatureException")
        #expect(error?.message.contains("Authorization header requires 'Signature' parameter.") == true)
    }

    /// Errors that quote the Authorization header quote it as sent (the verifier lower-cases signed names in its own
    /// copy), with the fields as strings or as a parser's bytes.
    @Test func errorsQuoteTheAuthorizationHeaderAsSent() {
        let authorization =
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=Host;X-Amz-Date"
        let headers = TestSigner().headers(extra: [("Authorization", authorization)])
        let asStrings = SignableRequest(method: "POST", target: "/", headers: headers, body: [])
        let asBytes = SignableRequest(
            method: "POST",
            target: "/",
            fields: HeaderFields(headers),
            payload: .digest(SigV4.sha256(UnsafeRawBufferPointer(start: nil, count: 0)))
        )
        for request in [asStrings, asBytes] {
            #expect(failure(request)?.message.hasSuffix(" Authorization=\(authorization)") == true)
        }
    }

    @Test func otherAlgorithmIsIncomplete() {
        let request = SignableRequest(
            method: "POST",
            target: "/",
            headers: TestSigner().headers(extra: [
                ("Authorization", "AWS3 Credential=x, SignedHeaders=host, Signature=y")
            ]),
            body: []
        )
        let error = failure(request)
        #expect(error?.code == "IncompleteSignatureException")
        #expect(error?.message == "Unsupported AWS 'algorithm': 'AWS3'. Use AWS4-HMAC-SHA256.")
    }

    @Test func signedHeadersWithoutHostIsInvalid() {
        let signer = TestSigner()
        var request = SignableRequest(method: "POST", target: "/", headers: signer.headers(), body: [])
        request.headers.append(("Authorization", signer.authorization(for: request, signedHeaders: ["x-amz-date"])))
        let error = failure(request)
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.message.contains("'Host' or ':authority' must be a 'SignedHeader'") == true)
    }

    @Test func pairWithoutEqualsIsIncomplete() {
        let authorization =
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders, Signature=abcd"
        let request = SignableRequest(
            method: "POST",
            target: "/",
            headers: TestSigner().headers(extra: [("Authorization", authorization)]),
            body: []
        )
        let error = failure(request)
        #expect(error?.code == "IncompleteSignatureException")
        #expect(error?.message.contains("missing equal-sign") == true)
    }

    @Test func twoAuthorizationHeaders() {
        var request = TestSigner().signedRequest()
        request.headers.append(request.headers[request.headers.count - 1])
        #expect(failure(request)?.code == "IncompleteSignatureException")
    }

    @Test func noDateHeader() {
        let signer = TestSigner()
        var request = SignableRequest(
            method: "POST",
            target: "/",
            headers: signer.headers().filter { $0.name != "X-Amz-Date" },
            body: []
        )
        request.headers.append(("Authorization", signer.authorization(for: request, signedHeaders: ["host"])))
        let error = failure(request)
        #expect(error?.code == "IncompleteSignatureException")
    }

    @Test func dateHeaderInsteadOfAmzDate() throws {
        let signer = TestSigner()
        var request = SignableRequest(
            method: "POST",
            target: "/",
            headers: signer.headers().filter { $0.name != "X-Amz-Date" } + [("Date", "Sun, 30 Aug 2015 12:36:00 GMT")],
            body: Array(TestSigner.jsonBody.utf8)
        )
        request.headers.append(("Authorization", signer.authorization(for: request)))
        #expect(try verifier.verify(request) == "AKIDEXAMPLE")
    }

    @Test func malformedAmzDate() {
        let signer = TestSigner(amzDate: "2015-08-30T12:36:00Z")
        let error = failure(signer.signedRequest())
        #expect(error?.code == "IncompleteSignatureException")
        #expect(error?.message.hasPrefix("Date must be in ISO-8601 'basic format'.") == true)
    }

    @Test func matchingContentSHA256IsAccepted() throws {
        let hash = SigV4.hexSHA256(Array(TestSigner.jsonBody.utf8))
        let request = TestSigner().signedRequest(extraHeaders: [("X-Amz-Content-Sha256", hash)])
        #expect(try verifier.verify(request) == "AKIDEXAMPLE")
    }

    @Test func mismatchingContentSHA256() {
        let wrongHash = SigV4.hexSHA256(Array("something else".utf8))
        let request = TestSigner().signedRequest(extraHeaders: [("X-Amz-Content-Sha256", wrongHash)])
        let error = failure(request)
        #expect(error?.code == "InvalidSignatureException")
        #expect(error?.message.contains("x-amz-content-sha256") == true)
    }

    /// The body's hash given as its digest (the data plane's form) or as hex: the same requests verify, and fail,
    /// alike.
    @Test(arguments: ["none", "match", "other body", "uppercase", "short"])
    func bodyDigestInPlaceOfItsHex(declared: String) throws {
        let body = Array(TestSigner.jsonBody.utf8)
        let hash = SigV4.hexSHA256(body)
        let header: String? =
            switch declared {
            case "none": nil
            case "match": hash
            case "uppercase": hash.uppercased()
            case "short": String(hash.dropLast())
            default: SigV4.hexSHA256(Array(declared.utf8))
            }
        let signed = TestSigner().signedRequest(extraHeaders: header.map { [("X-Amz-Content-Sha256", $0)] } ?? [])
        let byDigest = SignableRequest(
            method: signed.method,
            target: signed.path,
            headers: signed.headers,
            payload: .digest(body.withUnsafeBytes { SigV4.sha256($0) })
        )
        let byHex = SignableRequest(
            method: signed.method,
            target: signed.path,
            headers: signed.headers,
            payload: .hex(hash)
        )
        // The data plane's form: the fields as a parser's bytes.
        let byFields = SignableRequest(
            method: signed.method,
            target: signed.path,
            fields: HeaderFields(signed.headers),
            payload: .digest(body.withUnsafeBytes { SigV4.sha256($0) })
        )
        #expect(byDigest.payloadHash == hash)
        if declared == "none" || declared == "match" {
            #expect(try verifier.verify(byDigest) == "AKIDEXAMPLE")
            #expect(try verifier.verify(byHex) == "AKIDEXAMPLE")
            #expect(try verifier.verify(byFields) == "AKIDEXAMPLE")
        } else {
            #expect(failure(byDigest)?.message.contains("x-amz-content-sha256") == true)
            #expect(failure(byHex)?.message.contains("x-amz-content-sha256") == true)
            #expect(failure(byFields)?.message.contains("x-amz-content-sha256") == true)
        }
        // A digest of other bytes breaks the signature, as a wrong hex hash does.
        let otherBody = SignableRequest(
            method: signed.method,
            target: signed.path,
            headers: signed.headers,
            payload: .digest(Array("other".utf8).withUnsafeBytes { SigV4.sha256($0) })
        )
        #expect(failure(otherBody) != nil)
    }
}

@Suite struct SigV4SignerTests {
    /// What the signer signs, the verifier accepts; and a changed body is refused.
    @Test func signedRequestsVerify() throws {
        let credentials = Credentials(
            accessKeyID: "AKIDEXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        )
        let date = try #require(SigV4Verifier.parseAmzDate("20150830T123600Z"))
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sagemaker")
        let body = Array(#"{"EndpointName":"e"}"#.utf8)
        let headers: [(name: String, value: String)] = [
            ("Host", "127.0.0.1:8400"), ("Content-Type", "application/x-amz-json-1.1"),
        ]
        let signed = headers + signer.sign(method: "POST", path: "/", headers: headers, body: body, date: date)
        let verifier = SigV4Verifier(
            region: "us-east-1",
            service: "sagemaker",
            credentials: StaticCredentialProvider([credentials]),
            clock: FixedSignerClock(date: date)
        )
        let request = SignableRequest(method: "POST", target: "/", headers: signed, body: body)
        #expect(try verifier.verify(request) == "AKIDEXAMPLE")
        let tampered = SignableRequest(method: "POST", target: "/", headers: signed, body: Array("{}".utf8))
        #expect(throws: ServiceError.self) { try verifier.verify(tampered) }
    }
}

extension SigV4SignerTests {
    /// The per-loop cache hands out copies of one keyed HMAC: using a copy must never change the cached state. Its
    /// scratch array, reused for every canonical request and string to sign, must carry nothing over from a longer
    /// request to a shorter one.
    @Test func cachedSigningStateIsCopiedPerRequest() throws {
        let credentials = Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")
        let date = try #require(SigV4Verifier.parseAmzDate("20261129T120000Z"))
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sagemaker")
        let verifier = SigV4Verifier(
            region: "us-east-1",
            service: "sagemaker",
            credentials: StaticCredentialProvider([credentials]),
            clock: FixedSignerClock(date: date)
        )
        let cache = SigningKeyCache()
        let host: [(name: String, value: String)] = [("host", "127.0.0.1:8400")]
        let calls = [
            ("a", "/x"), ("b", "/a/much/longer/path/than/the/others"), ("a", "/x"), ("c,d", "/y"), ("a", "/x"),
        ]
        for (text, path) in calls {
            let body = Array(text.utf8)
            let signed = host + signer.sign(method: "POST", path: path, headers: host, body: body, date: date)
            let request = SignableRequest(method: "POST", target: path, headers: signed, body: body)
            #expect(try verifier.verify(request, keyCache: cache) == "AKIDEXAMPLE")
            let tampered = SignableRequest(method: "POST", target: path, headers: signed, body: body + [0x20])
            #expect(throws: ServiceError.self) { try verifier.verify(tampered, keyCache: cache) }
        }
    }

    /// The cache answers the access key used last without a new string: keys that differ from it — by a letter, by
    /// being a prefix of it — must still be told apart, each verified with its own secret and returned as itself.
    @Test func cachedAccessKeyIsReusedOnlyForTheSameKey() throws {
        let keys = [
            Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret-1"),
            Credentials(accessKeyID: "AKIDEXAMPLF", secretAccessKey: "secret-2"),
            Credentials(accessKeyID: "AKIDEXAMPL", secretAccessKey: "secret-3"),
        ]
        let date = try #require(SigV4Verifier.parseAmzDate("20261129T120000Z"))
        let verifier = SigV4Verifier(
            region: "us-east-1",
            service: "sagemaker",
            credentials: StaticCredentialProvider(keys),
            clock: FixedSignerClock(date: date)
        )
        let cache = SigningKeyCache()
        let host: [(name: String, value: String)] = [("host", "127.0.0.1:8400")]
        for index in [0, 0, 1, 0, 2, 2, 1] {
            let signer = SigV4Signer(credentials: keys[index], region: "us-east-1", service: "sagemaker")
            let signed = host + signer.sign(method: "POST", path: "/", headers: host, body: [], date: date)
            let request = SignableRequest(method: "POST", target: "/", headers: signed, body: [UInt8]())
            #expect(try verifier.verify(request, keyCache: cache) == keys[index].accessKeyID)
            // Signed with another key's secret under this key's name: refused, whatever the cache last saw.
            let wrong = Credentials(
                accessKeyID: keys[index].accessKeyID,
                secretAccessKey: keys[(index + 1) % keys.count].secretAccessKey
            )
            let forged = SigV4Signer(credentials: wrong, region: "us-east-1", service: "sagemaker")
            let forgedHeaders = host + forged.sign(method: "POST", path: "/", headers: host, body: [], date: date)
            let forgery = SignableRequest(method: "POST", target: "/", headers: forgedHeaders, body: [UInt8]())
            #expect(throws: ServiceError.self) { try verifier.verify(forgery, keyCache: cache) }
        }
    }

    /// S3 signs the once-encoded path as sent (found by review: it was encoded twice, so keys with a space, `+` or
    /// `=` got SignatureDoesNotMatch from a real S3). The expected header is botocore's S3SigV4Auth for the same request.
    @Test func s3SignsTheEncodedPathAsSent() throws {
        let credentials = Credentials(
            accessKeyID: "AKIDEXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        )
        let date = try #require(SigV4Verifier.parseAmzDate("20261129T120000Z"))
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "s3")
        let headers = signer.sign(
            method: "GET",
            path: "/models/xgb/run%201/a%2Bb%3Dc/model.tar.gz",
            headers: [("host", "127.0.0.1:9000")],
            body: [],
            date: date
        )
        let authorization = headers.first { $0.name == "authorization" }?.value
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=f28ace11ba69bb017eb771f1588fd615b07ded1c0ac951e6f3417a50a48e94cb"
        )
    }
}

private struct FixedSignerClock: WallClock {
    let date: Date
    func now() -> Date { date }
}

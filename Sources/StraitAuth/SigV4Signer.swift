public import Foundation

/// Signs requests with AWS Signature Version 4: for Strait's own clients (S3 model downloads, the benchmark).
public struct SigV4Signer: Sendable {
    public let credentials: Credentials
    public let region: String
    public let service: String

    public init(credentials: Credentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to a request: `x-amz-date`, `x-amz-content-sha256` and `authorization`.
    /// - Parameters:
    ///   - headers: the headers the request will carry; `host` must be among them. All of them are signed.
    public func sign(
        method: String,
        path: String,
        query: String = "",
        headers: [(name: String, value: String)],
        body: [UInt8],
        date: Date = Date()
    ) -> [(name: String, value: String)] {
        let amzDate = SigV4Verifier.formatAmzDate(date)
        let payloadHash = SigV4.hexSHA256(body)
        var all = headers.map { (name: $0.name.lowercased(), value: $0.value) }
        all.append(("x-amz-date", amzDate))
        all.append(("x-amz-content-sha256", payloadHash))
        let signedHeaders = Array(Set(all.map(\.name))).sorted()
        var request = SignableRequest(
            method: method,
            path: path,
            query: query,
            headers: all,
            payload: .hex(payloadHash)
        )
        // S3 signs the (once-encoded) path as it is sent.
        request.pathIsCanonical = service == "s3"
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        let toSign = SigV4.stringToSign(
            canonicalRequest: SigV4.canonicalRequest(request, signedHeaders: signedHeaders),
            amzDate: amzDate,
            scope: scope
        )
        let key = SigV4.signingKey(
            secret: credentials.secretAccessKey,
            date: String(amzDate.prefix(8)),
            region: region,
            service: service
        )
        let signature = SigV4.signature(stringToSign: toSign, key: key)
        return [
            ("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash),
            (
                "authorization",
                "\(SigV4.algorithm) Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders.joined(separator: ";")), Signature=\(signature)"
            ),
        ]
    }
}

import Foundation
import StraitAuth

/// SigV4 verification alone, in a loop: what the data plane does per call between reading a request and routing it
/// (body hash, signable request, verification), on a request shaped like boto3's `invoke_endpoint`. Steadier than
/// the end-to-end figures on a shared VM, so a change of a microsecond shows.
enum VerifyBench {
    static func run(calls: Int, payload: Int) throws {
        let credentials = Credentials(
            accessKeyID: "AKIASTRAITBENCH00001",
            secretAccessKey: "bench-secret-key-0123456789"
        )
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sagemaker")
        let verifier = SigV4Verifier(
            region: "us-east-1",
            service: "sagemaker",
            credentials: StaticCredentialProvider([credentials])
        )
        let body = [UInt8](repeating: UInt8(ascii: "1"), count: payload)
        let path = "/endpoints/bench/invocations"
        var headers: [(name: String, value: String)] = [
            ("host", "127.0.1.1:8080"), ("content-type", "text/csv"), ("accept", "application/json"),
            ("user-agent", "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.18 md/arch#x86_64 lang/python#3.11.7"),
            ("amz-sdk-invocation-id", "8f2b7a9e-3c1d-4e5f-a6b7-c8d9e0f1a2b3"), ("amz-sdk-request", "attempt=1"),
            ("content-length", String(payload)),
        ]
        headers += signer.sign(method: "POST", path: path, headers: headers, body: body)
        // Strait's signer also signs x-amz-content-sha256 (boto3 does not send it to sagemaker-runtime): one more
        // signed header and a 64-byte comparison than a boto3 call costs.
        let keys = SigningKeyCache()
        // As the data plane hands them over: the fields as the parser's bytes (HTTP1 builds them while it reads the
        // head, outside what this times), the body's digest hex-encoded straight into the canonical request.
        let fields = HeaderFields(headers)
        func once() throws {
            let request = SignableRequest(
                method: "POST",
                target: path,
                fields: fields,
                payload: .digest(body.withUnsafeBytes { SigV4.sha256($0) })
            )
            _ = try verifier.verify(request, keyCache: keys)
        }
        do { try once() } catch { throw BenchError("the benchmark's own request did not verify: \(error)") }
        for _ in 0..<min(calls, 10_000) { try once() }
        var rounds: [Double] = []
        for _ in 0..<5 {
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<calls { try once() }
            let elapsed = clock.now - start
            let seconds = elapsed / .seconds(1)
            rounds.append(seconds / Double(calls) * 1e9)
        }
        rounds.sort()
        print(
            String(
                format:
                    "SigV4 verification (body hash, signable request, verify), %d-byte body: %.0f ns per call (median of 5 rounds of %d; min %.0f, max %.0f)",
                payload,
                rounds[2],
                calls,
                rounds[0],
                rounds[4]
            )
        )
    }
}

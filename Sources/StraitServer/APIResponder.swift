import Foundation
public import NIOHTTP1
public import StraitAuth
public import StraitControlPlane
import StraitCore
public import StraitDataPlane
import StraitNetwork

/// The regional API endpoint: authenticates each request with SigV4 and routes `POST /` with `X-Amz-Target` to the
/// control plane. Every failure answers in AWS JSON error shape; nothing from the wire can crash it.
public struct APIResponder: BufferedResponder {
    /// The largest control-plane request body accepted.
    public static let maximumBodySize = 1024 * 1024

    let controlPlane: ControlPlane
    let verifier: SigV4Verifier
    /// The data plane's metrics as Prometheus text, for `GET /metrics`.
    let metrics: (@Sendable () async -> String)?
    /// `GET /strait/…`, for the `strait endpoints|instances|logs` commands.
    let admin: AdminAPI?
    /// The EC2 API subset (query protocol, signing name `ec2`).
    let ec2: (network: NetworkAPI, verifier: SigV4Verifier)?

    public init(controlPlane: ControlPlane, verifier: SigV4Verifier, metrics: (@Sendable () async -> String)? = nil) {
        self.init(controlPlane: controlPlane, verifier: verifier, metrics: metrics, admin: nil)
    }

    init(
        controlPlane: ControlPlane,
        verifier: SigV4Verifier,
        metrics: (@Sendable () async -> String)?,
        admin: AdminAPI?,
        ec2: (network: NetworkAPI, verifier: SigV4Verifier)? = nil
    ) {
        self.ec2 = ec2
        self.controlPlane = controlPlane
        self.verifier = verifier
        self.metrics = metrics
        self.admin = admin
    }

    public func respond(to request: BufferedRequest) async -> BufferedResponse {
        let requestID = UUID().uuidString.lowercased()
        if request.head.method == .GET, request.head.uri == "/metrics", let metrics {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/plain; version=0.0.4")
            return BufferedResponse(status: .ok, headers: headers, body: Array(await metrics().utf8))
        }
        if request.head.method == .GET, request.head.uri.hasPrefix(AdminAPI.prefix), let admin {
            do {
                try verify(request)
                let parts = request.head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                var response = try await admin.respond(path: parts[0], query: parts.count > 1 ? parts[1] : "")
                response.headers.add(name: "x-amzn-RequestId", value: requestID)
                return response
            } catch {
                return Self.error(error, requestID: requestID)
            }
        }
        if let ec2, isEC2(request) {
            return respondEC2(request, network: ec2.network, verifier: ec2.verifier, requestID: requestID)
        }
        do {
            let document = try handle(request)
            return Self.json(.ok, document, requestID: requestID)
        } catch {
            return Self.error(error, requestID: requestID)
        }
    }

    private func handle(_ request: BufferedRequest) throws(ServiceError) -> JSONValue {
        let path = request.head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/" else {
            throw ServiceError(
                code: "UnknownOperationException",
                message:
                    "No API at \(request.head.method.rawValue) \(path). The SageMaker API is POST / with X-Amz-Target.",
                status: 404
            )
        }
        guard request.head.method == .POST else {
            throw ServiceError(
                code: "UnknownOperationException",
                message: "The SageMaker API takes POST requests, not \(request.head.method.rawValue).",
                status: 405
            )
        }
        try verify(request)
        return try controlPlane.handle(
            target: request.head.headers.first(name: "x-amz-target") ?? "",
            body: request.body
        )
    }

    /// An EC2 query-protocol call: `POST /` with a form body and no `X-Amz-Target`.
    private func isEC2(_ request: BufferedRequest) -> Bool {
        guard request.head.method == .POST, request.head.headers["x-amz-target"].isEmpty,
            request.head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first == "/"
        else { return false }
        return request.head.headers.first(name: "content-type")?.lowercased()
            .hasPrefix("application/x-www-form-urlencoded") ?? false
    }

    private func respondEC2(
        _ request: BufferedRequest,
        network: NetworkAPI,
        verifier: SigV4Verifier,
        requestID: String
    ) -> BufferedResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/xml;charset=UTF-8")
        headers.add(name: "x-amzn-RequestId", value: requestID)
        do throws(ServiceError) {
            _ = try verifier.verify(signable(request))
            let parsed = try EC2Query.parse(request.body)
            let output = try network.handle(action: parsed.action, input: parsed.input)
            return BufferedResponse(
                status: .ok,
                headers: headers,
                body: EC2XML.response(action: parsed.action, output: output, requestID: requestID)
            )
        } catch {
            // EC2 answers client errors with 400 (auth failures included) and its own faults with 500.
            let status: HTTPResponseStatus = error.status >= 500 ? .internalServerError : .badRequest
            return BufferedResponse(
                status: status,
                headers: headers,
                body: EC2XML.error(error, requestID: requestID)
            )
        }
    }

    private func signable(_ request: BufferedRequest) -> SignableRequest {
        SignableRequest(
            method: request.head.method.rawValue,
            target: request.head.uri,
            headers: request.head.headers.map { ($0.name, $0.value) },
            body: request.body
        )
    }

    private func verify(_ request: BufferedRequest) throws(ServiceError) {
        _ = try verifier.verify(signable(request))
    }

    public func bodyTooLarge(_ head: HTTPRequestHead) -> BufferedResponse {
        Self.error(
            ServiceError(
                code: "SerializationException",
                message: "The request body is larger than \(Self.maximumBodySize) bytes.",
                status: 413
            ),
            requestID: UUID().uuidString.lowercased()
        )
    }

    /// The one place a `ServiceError` becomes an HTTP response.
    static func error(_ error: ServiceError, requestID: String) -> BufferedResponse {
        var response = json(HTTPResponseStatus(statusCode: error.status), error.jsonBody, requestID: requestID)
        response.headers.add(name: "x-amzn-ErrorType", value: error.code)
        return response
    }

    static func json(_ status: HTTPResponseStatus, _ document: JSONValue, requestID: String) -> BufferedResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/x-amz-json-1.1")
        headers.add(name: "x-amzn-RequestId", value: requestID)
        return BufferedResponse(status: status, headers: headers, body: Array(document.serialized().utf8))
    }
}

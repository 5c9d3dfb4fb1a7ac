import Foundation
public import NIOCore
public import NIOHTTP1
import StraitAuth
import StraitCore

/// InvokeEndpoint on raw SwiftNIO: `POST /endpoints/{EndpointName}/invocations`, authenticated with SigV4, routed by
/// the event loop's snapshot and forwarded over a pooled connection on the same loop, with no hop into Swift
/// concurrency.
///
/// On the regional listener other requests pass on to the next handler (the control plane); on a zonal listener
/// (`passThrough` false) they get a 404.
public final class InvocationHandler: ChannelInboundHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let dataPlane: DataPlane
    /// The zone this listener serves; for the regional listener, set per connection when it came in on a zone's
    /// runtime endpoint address (a wildcard listener serves those too).
    private var zone: String?
    private let passThrough: Bool
    private let activity: ListenerActivity
    private var loop: LoopContext?
    /// The caller's zone: the listener's for a zonal endpoint, else the zone of the caller's address (if any).
    private var callerZone: String?
    /// When the current invocation's head arrived.
    private var received = NIODeadline.now()
    /// What the current invocation adds to the metrics once its answer is written.
    private var pendingRecord: PendingRecord?

    private struct PendingRecord {
        var endpoint: String
        var variant: String
        var zone: String
        var modelLatency: Int64?
        var result: InvocationRecord.Result
    }

    private enum State {
        case idle
        case passing
        case collecting(HTTPRequestHead, endpoint: Substring, body: ByteBuffer?, tooLarge: Bool)
        case forwarding
    }

    private var state = State.idle

    /// - Parameters:
    ///   - zone: the zone of a zonal listener; nil for the regional endpoint, which routes across all zones.
    ///   - passThrough: hand requests that are not invocations to the next handler.
    public init(dataPlane: DataPlane, zone: String?, passThrough: Bool, activity: ListenerActivity) {
        self.dataPlane = dataPlane
        self.zone = zone
        self.passThrough = passThrough
        self.activity = activity
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        loop = dataPlane.context(for: context.eventLoop)
        if zone == nil { zone = dataPlane.listenerZone(of: context.channel.localAddress) }
        callerZone = zone ?? dataPlane.zone(of: context.channel.remoteAddress)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            if head.method == .POST, let endpoint = Self.invocationEndpoint(head.uri) {
                received = .now()
                pendingRecord = nil
                state = .collecting(head, endpoint: endpoint, body: nil, tooLarge: false)
            } else if passThrough {
                state = .passing
                context.fireChannelRead(data)
            } else {
                received = .now()
                pendingRecord = nil
                state = .collecting(head, endpoint: "", body: nil, tooLarge: false)
            }
        case (.passing, _):
            if case .end = part { state = .idle }
            context.fireChannelRead(data)
        case (.collecting(let head, let endpoint, var body, let tooLarge), .body(var chunk)):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > DataPlane.maximumPayloadSize {
                state = .collecting(head, endpoint: endpoint, body: nil, tooLarge: true)
                return
            }
            state = .idle  // release the buffer reference before appending, so it is not copied
            if body == nil { body = chunk } else { body?.writeBuffer(&chunk) }
            state = .collecting(head, endpoint: endpoint, body: body, tooLarge: false)
        case (.collecting(let head, let endpoint, let body, let tooLarge), .end):
            state = .forwarding
            let request = Invocation(
                head: head,
                endpoint: endpoint,
                body: body ?? context.channel.allocator.buffer(capacity: 0),
                tooLarge: tooLarge
            )
            handle(request, context: context)
        default:
            break
        }
    }

    /// The endpoint name of an InvokeEndpoint path, or nil if the path is something else.
    static func invocationEndpoint(_ uri: String) -> Substring? {
        // On the UTF-8 view: this runs on every request.
        let bytes = uri.utf8
        let end = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        let path = bytes[..<end]
        let prefix = "/endpoints/".utf8
        let suffix = "/invocations".utf8
        guard path.count > prefix.count + suffix.count, path.starts(with: prefix),
            path.reversed().starts(with: suffix.reversed())
        else { return nil }
        let name = path.dropFirst(prefix.count).dropLast(suffix.count)
        guard !name.contains(UInt8(ascii: "/")) else { return nil }
        return Substring(name)
    }

    private struct Invocation {
        let head: HTTPRequestHead
        let endpoint: Substring
        let body: ByteBuffer
        let tooLarge: Bool
    }

    private func handle(_ request: Invocation, context: ChannelHandlerContext) {
        let keepGoing = activity.requestStarted()
        let requestID = loop?.nextRequestID() ?? UUID().uuidString.lowercased()
        guard !request.endpoint.isEmpty else {
            let path = request.head.uri.split(separator: "?").first.map(String.init) ?? request.head.uri
            fail(
                ServiceError(
                    code: "UnknownOperationException",
                    message:
                        "No API at \(request.head.method.rawValue) \(path). This runtime endpoint serves POST /endpoints/{EndpointName}/invocations.",
                    status: 404
                ),
                head: request.head,
                requestID: requestID,
                close: !keepGoing,
                context: context
            )
            return
        }
        do {
            let route = try authorize(request)
            forward(request, route: route, requestID: requestID, close: !keepGoing, context: context, tried: [])
        } catch {
            fail(error, head: request.head, requestID: requestID, close: !keepGoing, context: context)
        }
    }

    /// Checks the signature, the size and the endpoint; returns the endpoint's route.
    private func authorize(_ request: Invocation) throws(ServiceError) -> EndpointRoute {
        // The body of an oversized request was not kept, so its signature cannot be checked: refuse it first.
        if request.tooLarge {
            throw ServiceError(
                code: "ValidationError",
                message:
                    "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length less than or equal to \(DataPlane.maximumPayloadSize)"
            )
        }
        let signable = SignableRequest(
            method: request.head.method.rawValue,
            target: request.head.uri,
            headers: request.head.headers.map { ($0.name, $0.value) },
            payloadHash: request.body.withUnsafeReadableBytes { SigV4.hexSHA256($0) }
        )
        _ = try dataPlane.verifier.verify(signable, keyCache: loop?.signingKeys)
        let name = String(request.endpoint)
        guard Self.isValidEndpointName(name) else {
            throw ServiceError(
                code: "ValidationError",
                message:
                    "1 validation error detected: Value '\(name)' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        }
        if let error = Self.headerError(request.head.headers) { throw error }
        guard let route = loop?.table.endpoint(named: name) else {
            if let status = dataPlane.endpointStatus(name) {
                throw ServiceError(
                    code: "ValidationError",
                    message:
                        "Endpoint \(name) of account \(dataPlane.account.accountID) is \(status); it can be invoked once it is InService."
                )
            }
            throw ServiceError(
                code: "ValidationError",
                message: "Endpoint \(name) of account \(dataPlane.account.accountID) not found."
            )
        }
        return route
    }

    /// The header limits of InvokeEndpoint's input shape.
    static func headerError(_ headers: HTTPHeaders) -> ServiceError? {
        let limits: [(String, String, Int)] = [
            ("content-type", "contentType", 1024), ("accept", "accept", 1024),
            ("x-amzn-sagemaker-custom-attributes", "customAttributes", 1024),
            ("x-amzn-sagemaker-target-model", "targetModel", 1024),
            ("x-amzn-sagemaker-target-variant", "targetVariant", 63),
            ("x-amzn-sagemaker-inference-id", "inferenceId", 64),
        ]
        for (header, member, maximum) in limits {
            guard let value = headers.first(name: header) else { continue }
            if value.utf8.count > maximum {
                return ServiceError(
                    code: "ValidationError",
                    message:
                        "1 validation error detected: Value at '\(member)' failed to satisfy constraint: Member must have length less than or equal to \(maximum)"
                )
            }
            if value.isEmpty, member == "targetModel" || member == "inferenceId" {
                return ServiceError(
                    code: "ValidationError",
                    message:
                        "1 validation error detected: Value '' at '\(member)' failed to satisfy constraint: Member must have length greater than or equal to 1"
                )
            }
        }
        return nil
    }

    static func isValidEndpointName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
        guard alphanumeric(bytes[0]), alphanumeric(bytes[bytes.count - 1]) else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// Picks a variant and an instance and sends the call; a connection that cannot be made moves the call to another
    /// instance.
    private func forward(
        _ request: Invocation,
        route: EndpointRoute,
        requestID: String,
        close: Bool,
        context: ChannelHandlerContext,
        tried: [String]
    ) {
        guard let loop else {
            fail(.internalFailure(), head: request.head, requestID: requestID, close: true, context: context)
            return
        }
        let target = request.head.headers.first(name: "x-amzn-sagemaker-target-variant")
        guard let variantIndex = Router.chooseVariant(route, target: target, random: &loop.random) else {
            fail(
                ServiceError(
                    code: "ValidationError",
                    message: "The target variant \(target ?? "") does not exist in endpoint \(route.name)."
                ),
                head: request.head,
                requestID: requestID,
                close: close,
                context: context
            )
            return
        }
        let variant = route.variants[variantIndex]
        guard let instanceIndex = Router.chooseInstance(variant, zone: zone, excluding: tried, random: &loop.random)
        else {
            pendingRecord = PendingRecord(
                endpoint: route.name,
                variant: variant.name,
                zone: "",
                modelLatency: nil,
                result: .serverError
            )
            fail(
                ServiceError(
                    code: "ServiceUnavailable",
                    message:
                        "No healthy instance of variant \(variant.name) of endpoint \(route.name) can take the request. Try again later.",
                    status: 503
                ),
                head: request.head,
                requestID: requestID,
                close: close,
                context: context
            )
            return
        }
        let instance = variant.instances[instanceIndex]
        var headers = HTTPHeaders()
        headers.add(name: "host", value: instance.hostHeader)
        headers.add(name: "content-length", value: String(request.body.readableBytes))
        for name in Self.forwardedHeaders {
            for value in request.head.headers[name] { headers.add(name: name, value: value) }
        }
        let upstreamHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/invocations", headers: headers)
        instance.outstanding.increment()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let modelStart = NIODeadline.now()
        loop.pool.send(
            host: instance.host,
            port: instance.port,
            unixSocket: instance.unixSocket,
            head: upstreamHead,
            body: request.body,
            timeout: dataPlane.invocationTimeout
        ).whenSuccess { outcome in
            instance.outstanding.decrement()
            let (handler, context) = bound.value
            switch outcome {
            case .connectFailed, .staleConnection:
                break  // the call moves to another instance; that one is what the metrics count
            default:
                handler.pendingRecord = PendingRecord(
                    endpoint: route.name,
                    variant: variant.name,
                    zone: instance.zone,
                    modelLatency: (NIODeadline.now() - modelStart).nanoseconds / 1000,
                    result: .success
                )
            }
            handler.complete(
                request,
                outcome: outcome,
                route: route,
                variant: variant.name,
                instance: instance,
                requestID: requestID,
                close: close,
                context: context,
                tried: tried
            )
        }
    }

    /// Headers InvokeEndpoint passes to the container; SageMaker strips every other one.
    static let forwardedHeaders = [
        "content-type", "accept", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id",
        "x-amzn-sagemaker-target-model",
    ]

    private func complete(
        _ request: Invocation,
        outcome: UpstreamOutcome,
        route: EndpointRoute,
        variant: String,
        instance: InstanceRoute,
        requestID: String,
        close: Bool,
        context: ChannelHandlerContext,
        tried: [String]
    ) {
        let error: ServiceError
        switch outcome {
        case .response(let head, let body) where (200..<300).contains(Int(head.status.code)):
            var headers = HTTPHeaders()
            if let contentType = head.headers.first(name: "content-type") {
                headers.add(name: "content-type", value: contentType)
            }
            headers.add(name: "x-Amzn-Invoked-Production-Variant", value: variant)
            if let attributes = head.headers.first(name: "x-amzn-sagemaker-custom-attributes") {
                headers.add(name: "X-Amzn-SageMaker-Custom-Attributes", value: attributes)
            }
            write(
                .ok,
                headers: headers,
                body: body,
                head: request.head,
                requestID: requestID,
                close: close,
                context: context
            )
            return
        case .response(let head, let body):
            let original = String(decoding: body.readableBytesView.prefix(4096), as: UTF8.self)
            error = modelError(status: Int(head.status.code), original: original, route: route)
        case .connectFailed, .staleConnection:
            // A failed connect rules the instance out for this call. A stale kept-alive connection does not (the
            // instance may only have closed an idle connection): the call is tried once more on a fresh one,
            // recorded as a "~id" entry that excludes nothing.
            let staleRetried = tried.contains { $0.hasPrefix("~") }
            let retry: String
            if case .staleConnection = outcome, !staleRetried {
                retry = "~" + instance.id
            } else {
                retry = instance.id
            }
            forward(
                request,
                route: route,
                requestID: requestID,
                close: close,
                context: context,
                tried: tried + [retry]
            )
            return
        case .broken:
            error = modelError(
                status: 0,
                original: "The connection to the model container closed before it answered.",
                route: route
            )
        case .timedOut:
            error = modelError(
                status: 0,
                original:
                    "Your invocation timed out while waiting for a response from container primary. Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
                route: route
            )
        case .responseTooLarge:
            error = modelError(
                status: 0,
                original: "The model's response is larger than \(DataPlane.maximumPayloadSize) bytes.",
                route: route
            )
        }
        fail(error, head: request.head, requestID: requestID, close: close, context: context)
    }

    private func logStream(_ route: EndpointRoute) -> String {
        "arn:aws:logs:\(dataPlane.account.region):\(dataPlane.account.accountID):log-group:/aws/sagemaker/Endpoints/\(route.name)"
    }

    /// SageMaker's ModelError: "Received client|server error (STATUS) from primary with message …", status 0 when
    /// the container gave no answer.
    private func modelError(status: Int, original: String, route: EndpointRoute) -> ServiceError {
        let kind = (400..<500).contains(status) ? "client" : "server"
        return ServiceError(
            code: "ModelError",
            message:
                "Received \(kind) error (\(status)) from primary with message \"\(original)\". See \(logStream(route)) for more information.",
            status: 424,
            extraFields: [
                "OriginalStatusCode": .number(Double(status)), "OriginalMessage": .string(original),
                "LogStreamArn": .string(logStream(route)),
            ]
        )
    }

    private func fail(
        _ error: ServiceError,
        head: HTTPRequestHead,
        requestID: String,
        close: Bool,
        context: ChannelHandlerContext
    ) {
        pendingRecord?.result =
            error.code == "ModelError" ? .modelError : error.status >= 500 ? .serverError : .clientError
        if pendingRecord == nil, error.status >= 500 { loop?.metrics.unroutedServerErrors += 1 }
        if pendingRecord == nil, error.status < 500 { loop?.metrics.unroutedClientErrors += 1 }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "x-amzn-ErrorType", value: error.code)
        var body = context.channel.allocator.buffer(capacity: 256)
        body.writeString(error.jsonBody.serialized())
        write(
            HTTPResponseStatus(statusCode: error.status),
            headers: headers,
            body: body,
            head: head,
            requestID: requestID,
            close: close,
            context: context
        )
    }

    private func write(
        _ status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer,
        head: HTTPRequestHead,
        requestID: String,
        close: Bool,
        context: ChannelHandlerContext
    ) {
        activity.requestFinished()
        state = .idle
        var headers = headers
        headers.add(name: "x-amzn-RequestId", value: requestID)
        headers.add(name: "content-length", value: String(body.readableBytes))
        let keepAlive = head.isKeepAlive && !close
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let channel = context.channel
        let record = pendingRecord
        pendingRecord = nil
        let (received, callerZone, loop) = (self.received, self.callerZone, self.loop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if let record, let loop {
                let total = (NIODeadline.now() - received).nanoseconds / 1000
                loop.metrics.record(
                    InvocationRecord(
                        endpoint: record.endpoint,
                        variant: record.variant,
                        zone: record.zone,
                        result: record.result,
                        modelLatency: record.modelLatency,
                        overheadLatency: max(0, total - (record.modelLatency ?? 0)),
                        crossZone: callerZone != nil && !record.zone.isEmpty && record.zone != callerZone
                    )
                )
            }
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension InvocationHandler: Sendable {}

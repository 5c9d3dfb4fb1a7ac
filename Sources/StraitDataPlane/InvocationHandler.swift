import NIOCore
import StraitAuth
import StraitCore

/// InvokeEndpoint on raw SwiftNIO: `POST /endpoints/{EndpointName}/invocations`, authenticated with SigV4, routed by
/// the event loop's snapshot and forwarded over a pooled connection on the same loop, with no hop into Swift
/// concurrency. The connection's framing is ``HTTPConnectionHandler``'s; this is what it does with an invocation.
extension HTTPConnectionHandler: UpstreamClient {
    /// The endpoint name of an InvokeEndpoint path, or nil if the path is something else.
    static func invocationEndpoint(_ uri: String) -> String? {
        // On contiguous UTF-8 with byte offsets: this runs on every request.
        var uri = uri
        return uri.withUTF8 { bytes in
            let prefix: StaticString = "/endpoints/"
            let suffix: StaticString = "/invocations"
            let end = Bytes.firstIndex(of: UInt8(ascii: "?"), in: UnsafeRawBufferPointer(bytes), from: 0) ?? bytes.count
            let start = prefix.utf8CodeUnitCount
            let nameEnd = end - suffix.utf8CodeUnitCount
            guard nameEnd > start,
                Bytes.equal(UnsafeBufferPointer(rebasing: bytes[0..<start]), prefix),
                Bytes.equal(UnsafeBufferPointer(rebasing: bytes[nameEnd..<end]), suffix),
                !bytes[start..<nameEnd].contains(UInt8(ascii: "/"))
            else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<nameEnd]), as: UTF8.self)
        }
    }

    func handleInvocation(_ request: consuming Request, endpoint: String, context: ChannelHandlerContext) {
        let keepGoing = activity.requestStarted()
        pendingRecord = nil
        let requestID = loop?.nextRequestID()
        do {
            let route = try authorize(request, endpoint: endpoint)
            forward(request, route: route, requestID: requestID, close: !keepGoing, context: context, tried: [])
        } catch {
            fail(error, head: request.head, requestID: requestID, close: !keepGoing, context: context)
        }
    }

    /// Checks the signature, the size and the endpoint; returns the endpoint's route.
    private func authorize(_ request: Request, endpoint name: String) throws(ServiceError) -> EndpointRoute {
        // The body of an oversized request was not kept, so its signature cannot be checked: refuse it first.
        if request.body.tooLarge {
            throw ServiceError(
                code: "ValidationError",
                message:
                    "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length less than or equal to \(DataPlane.maximumPayloadSize)"
            )
        }
        guard let dataPlane else { throw .internalFailure() }
        let signable = SignableRequest(
            method: request.head.method,
            target: request.head.target,
            fields: request.head.fields,  // read in place; HTTP1 lower-cased the names
            payload: .digest(
                request.body.bytes?.withUnsafeReadableBytes { SigV4.sha256($0) }
                    ?? SigV4.sha256(UnsafeRawBufferPointer(start: nil, count: 0))
            )
        )
        _ = try dataPlane.verifier.verify(signable, keyCache: loop?.signingKeys)
        guard Self.isValidEndpointName(name) else {
            throw ServiceError(
                code: "ValidationError",
                message:
                    "1 validation error detected: Value '\(name)' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        }
        if let error = Self.headerError(request.head.fields) { throw error }
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

    /// The header limits of InvokeEndpoint's input shape, checked in one pass over the (lower-cased) headers.
    static func headerError(_ fields: HeaderFields) -> ServiceError? {
        fields.withFields { bytes, fields in
            for field in fields {
                guard let header = invokeEndpointHeader(bytes, field.name) else { continue }
                if field.value.count > header.maximum {
                    return ServiceError(
                        code: "ValidationError",
                        message:
                            "1 validation error detected: Value at '\(header.member)' failed to satisfy constraint: Member must have length less than or equal to \(header.maximum)"
                    )
                }
                if field.value.count < header.minimum {
                    return ServiceError(
                        code: "ValidationError",
                        message:
                            "1 validation error detected: Value '' at '\(header.member)' failed to satisfy constraint: Member must have length greater than or equal to 1"
                    )
                }
            }
            return nil
        }
    }

    /// A header InvokeEndpoint's input shape names: its member, its length limits, and whether the container gets
    /// it (SageMaker strips every other header).
    struct InvokeEndpointHeader {
        let member: String
        var minimum = 0
        let maximum: Int
        let forwarded: Bool
    }

    /// The InvokeEndpoint header whose lower-case name is at `name` in `bytes`, or nil for any other header.
    static func invokeEndpointHeader(_ bytes: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> InvokeEndpointHeader? {
        // The length first (content-type 12, accept 6, the x-amzn-sagemaker-… ones 29 to 34): most headers of a
        // request are passed over without comparing bytes.
        let count = name.count
        guard count == 12 || count == 6 || (count >= 29 && count <= 34) else { return nil }
        let name = UnsafeBufferPointer(rebasing: bytes[name])
        return if Bytes.equal(name, "content-type") {
            InvokeEndpointHeader(member: "contentType", maximum: 1024, forwarded: true)
        } else if Bytes.equal(name, "accept") {
            InvokeEndpointHeader(member: "accept", maximum: 1024, forwarded: true)
        } else if Bytes.equal(name, "x-amzn-sagemaker-custom-attributes") {
            InvokeEndpointHeader(member: "customAttributes", maximum: 1024, forwarded: true)
        } else if Bytes.equal(name, "x-amzn-sagemaker-target-model") {
            InvokeEndpointHeader(member: "targetModel", minimum: 1, maximum: 1024, forwarded: true)
        } else if Bytes.equal(name, "x-amzn-sagemaker-inference-id") {
            InvokeEndpointHeader(member: "inferenceId", minimum: 1, maximum: 64, forwarded: true)
        } else if Bytes.equal(name, "x-amzn-sagemaker-target-variant") {
            InvokeEndpointHeader(member: "targetVariant", maximum: 63, forwarded: false)  // Strait routes by it
        } else {
            nil
        }
    }

    static func isValidEndpointName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
        guard alphanumeric(first), alphanumeric(last) else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// Picks a variant and an instance and sends the call; a connection that cannot be made moves the call to another
    /// instance.
    private func forward(
        _ request: consuming Request,
        route: EndpointRoute,
        requestID: RequestID?,
        close: Bool,
        context: ChannelHandlerContext,
        tried: [String]
    ) {
        guard let loop, let dataPlane else {
            fail(.internalFailure(), head: request.head, requestID: requestID, close: true, context: context)
            return
        }
        let target = request.head.first("x-amzn-sagemaker-target-variant")
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
        let bodySize = request.body.bytes?.readableBytes ?? 0
        var upstream = outputBuffer(capacity: 256 + (bodySize <= 65536 ? bodySize : 0), context: context)
        upstream.writeStaticString("POST /invocations HTTP/1.1\r\n")
        Self.writeHeader(&upstream, "host", instance.hostHeader)
        Self.writeHeader(&upstream, "content-length", String(bodySize))
        request.head.fields.withFields { bytes, fields in  // the head's bytes, copied as they came
            for field in fields where Self.isForwarded(bytes, field.name) {
                upstream.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[field.name])))
                upstream.writeStaticString(": ")
                upstream.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[field.value])))
                upstream.writeStaticString("\r\n")
            }
        }
        upstream.writeStaticString("\r\n")
        // A small body goes in the same buffer as the head: one iovec, one copy of a few bytes.
        var separateBody: ByteBuffer?
        if var body = request.body.bytes, bodySize > 0 {
            if bodySize <= 65536 { upstream.writeBuffer(&body) } else { separateBody = body }
        }
        instance.outstanding.increment()
        inFlight = InFlightCall(
            request: request,
            route: route,
            variant: variant,
            instance: instance,
            requestID: requestID,
            close: close,
            context: context,
            tried: tried,
            modelStart: NIODeadline.now()
        )
        loop.pool.send(
            host: instance.host,
            port: instance.port,
            hostHeader: instance.hostHeader,
            unixSocket: instance.unixSocket,
            request: upstream,
            body: separateBody,
            timeout: dataPlane.invocationTimeout,
            client: self
        )
        keepSpare(upstream)
    }

    /// The instance's answer to the call in flight (or why there is none).
    func upstreamFinished(_ outcome: UpstreamOutcome) {
        guard var call = inFlight.take() else { return }  // moved out: no retain and release of its dozen references
        call.instance.outstanding.decrement()
        switch outcome {
        case .connectFailed, .staleConnection:
            break  // the call moves to another instance; that one is what the metrics count
        default:
            pendingRecord = PendingRecord(
                endpoint: call.route.name,
                variant: call.variant.name,
                zone: call.instance.zone,
                modelLatency: (NIODeadline.now() - call.modelStart).nanoseconds / 1000,
                result: .success
            )
        }
        complete(call, outcome: outcome)
        // The head's buffers, for the connection's next request to fill without allocating — unless a large head
        // grew them (an idle kept-alive connection keeps little, as with `keepSpare`), or the call went out again
        // to another instance with the same head (emptying shared buffers would copy them).
        guard inFlight == nil else { return }
        let recycled = call.request.head.fields.recycled()
        if recycled.allocatedBytes <= Self.spareFieldsCapacity { spareFields = recycled }
    }

    /// Headers InvokeEndpoint passes to the container (by lower-case name at `name` in `bytes`); SageMaker strips
    /// every other one.
    static func isForwarded(_ bytes: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> Bool {
        invokeEndpointHeader(bytes, name)?.forwarded == true
    }

    /// Answers the caller from the instance's outcome, or moves the call to another instance.
    private func complete(_ call: InFlightCall, outcome: UpstreamOutcome) {
        let error: ServiceError
        switch outcome {
        case .response(let head, let body) where (200..<300).contains(head.status):
            let keepAlive = call.request.head.keepAlive && !call.close
            var out = outputBuffer(capacity: 256, context: call.context)
            Self.writeStatusLine(&out, minorVersion: call.request.head.minorVersion, status: 200)
            if let contentType = head.contentType { Self.writeHeader(&out, "content-type", contentType) }
            Self.writeHeader(&out, "x-Amzn-Invoked-Production-Variant", call.variant.name)
            if let attributes = head.customAttributes {
                Self.writeHeader(&out, "X-Amzn-SageMaker-Custom-Attributes", attributes)
            }
            respond(
                &out,
                body: body,
                requestID: call.requestID,
                keepAlive: keepAlive,
                omitBody: false,
                context: call.context
            )
            return
        case .response(let head, let body):
            let original = String(decoding: body.readableBytesView.prefix(4096), as: UTF8.self)
            error = modelError(status: head.status, original: original, route: call.route)
        case .connectFailed, .staleConnection:
            // A failed connect rules the instance out for this call. A stale connection does not (the instance may
            // only have closed an idle kept-alive connection, or a new one was reset at once): the call is tried once
            // more on a fresh one, recorded as a "~id" entry that excludes nothing.
            let staleRetried = call.tried.contains { $0.hasPrefix("~") }
            let retry: String
            if case .staleConnection = outcome, !staleRetried {
                retry = "~" + call.instance.id
            } else {
                retry = call.instance.id
            }
            forward(
                call.request,
                route: call.route,
                requestID: call.requestID,
                close: call.close,
                context: call.context,
                tried: call.tried + [retry]
            )
            return
        case .broken:
            error = modelError(
                status: 0,
                original: "The connection to the model container closed before it answered.",
                route: call.route
            )
        case .timedOut:
            error = modelError(
                status: 0,
                original:
                    "Your invocation timed out while waiting for a response from container primary. Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
                route: call.route
            )
        case .malformed(let reason):
            error = modelError(
                status: 0,
                original: "The model container's answer could not be read as HTTP/1.1: \(reason).",
                route: call.route
            )
        case .responseTooLarge:
            error = modelError(
                status: 0,
                original: "The model's response is larger than \(DataPlane.maximumPayloadSize) bytes.",
                route: call.route
            )
        }
        fail(error, head: call.request.head, requestID: call.requestID, close: call.close, context: call.context)
    }

    private func logStream(_ route: EndpointRoute) -> String {
        let account = dataPlane?.account
        return
            "arn:aws:logs:\(account?.region ?? ""):\(account?.accountID ?? ""):log-group:/aws/sagemaker/Endpoints/\(route.name)"
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

    func fail(
        _ error: ServiceError,
        head: HTTP1.RequestHead,
        requestID: RequestID?,
        close: Bool,
        context: ChannelHandlerContext
    ) {
        pendingRecord?.result =
            error.code == "ModelError" ? .modelError : error.status >= 500 ? .serverError : .clientError
        if pendingRecord == nil, error.status >= 500 { loop?.metrics.unroutedServerErrors += 1 }
        if pendingRecord == nil, error.status < 500 { loop?.metrics.unroutedClientErrors += 1 }
        var body = context.channel.allocator.buffer(capacity: 256)
        body.writeString(error.jsonBody.serialized())
        var out = context.channel.allocator.buffer(capacity: 256)
        Self.writeStatusLine(&out, minorVersion: head.minorVersion, status: error.status)
        out.writeStaticString("content-type: application/json\r\n")
        Self.writeHeader(&out, "x-amzn-ErrorType", error.code)
        respond(
            &out,
            body: body,
            requestID: requestID,
            keepAlive: head.keepAlive && !close,
            omitBody: head.method == "HEAD",  // its length is given; the bytes must not follow
            context: context
        )
    }

    /// Ends the head in `out` (request id, length, connection) and writes it with `body`.
    private func respond(
        _ out: inout ByteBuffer,
        body: ByteBuffer,
        requestID: RequestID?,
        keepAlive: Bool,
        omitBody: Bool,
        context: ChannelHandlerContext
    ) {
        out.writeStaticString("x-amzn-RequestId: ")
        requestID?.write(to: &out)
        out.writeStaticString("\r\n")
        Self.writeHeader(&out, "content-length", String(body.readableBytes))
        out.writeStaticString(keepAlive ? "\r\n" : "connection: close\r\n\r\n")
        if omitBody {
            finish(out, body: nil, keepAlive: keepAlive, context: context)
        } else if body.readableBytes <= 65536 {
            var body = body
            out.writeBuffer(&body)
            finish(out, body: nil, keepAlive: keepAlive, context: context)
        } else {
            finish(out, body: body, keepAlive: keepAlive, context: context)
        }
    }
}

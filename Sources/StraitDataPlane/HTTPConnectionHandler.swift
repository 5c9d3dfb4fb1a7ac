public import NIOCore
public import NIOHTTP1
import StraitAuth
import StraitCore

/// A whole HTTP request: head, body, and who sent it.
public struct BufferedRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    public var remoteAddress: SocketAddress?

    public init(head: HTTPRequestHead, body: [UInt8], remoteAddress: SocketAddress?) {
        self.head = head
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

/// A whole HTTP response.
public struct BufferedResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Answers buffered requests. The control plane is not latency-critical: one task per request is fine there.
public protocol BufferedResponder: Sendable {
    func respond(to request: BufferedRequest) async -> BufferedResponse
    /// The response for a body over the size limit.
    func bodyTooLarge(_ head: HTTPRequestHead) -> BufferedResponse
}

/// One HTTP/1.1 connection of a listener, framed by hand (``HTTP1``): InvokeEndpoint is answered on the connection's
/// event loop with no hop into Swift concurrency; every other request goes, buffered, to the ``BufferedResponder``
/// (the control plane) when the listener has one and gets a 404 when it does not.
///
/// Requests on a connection are answered in order. Pipelined requests wait, as bytes, until the response before
/// them is written; the connection stops reading only when more than ``HTTP1/maximumHeadSize`` bytes wait, so a
/// kept-alive connection costs no epoll change per call.
public final class HTTPConnectionHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    let dataPlane: DataPlane?
    private let responder: (any BufferedResponder)?
    let activity: ListenerActivity
    /// The body limit of requests for the responder (invocations have SageMaker's).
    private let maximumBodySize: Int
    /// The zone this listener serves; for the regional listener, set per connection when it came in on a zone's
    /// runtime endpoint address (a wildcard listener serves those too).
    var zone: String?
    /// The caller's zone: the listener's for a zonal endpoint, else the zone of the caller's address (if any).
    var callerZone: String?
    var loop: LoopContext?

    /// Bytes read and not yet consumed.
    private var input: ByteBuffer?
    /// How far the search for the end of the current head got.
    private var searched = 0
    private var phase = Phase.head
    /// The request whose body is being read.
    private var current: Request?
    private var bodyReader = HTTP1.BodyReader(.length(0))
    private var processing = false
    /// A read the connection held back while too many pipelined bytes waited.
    private var readHeld = false
    /// When the first byte of the current request arrived.
    var received = NIODeadline.now()
    private var timingNextByte = true
    /// When the last response was written, and how long the caller then took to send its next request: the loop
    /// polls for a caller's next request (``BusyPoll``) only while it came within the window last time.
    private var responded = NIODeadline.uptimeNanoseconds(0)
    private var callerPause = TimeAmount.zero
    /// What the current invocation adds to the metrics once its answer is written.
    var pendingRecord: PendingRecord?
    /// The invocation sent to an instance and waiting for its answer.
    var inFlight: InFlightCall?
    /// The last small buffer this connection wrote (a response, or a request to an instance): once NIO has written
    /// and dropped it, the next one is built on its storage instead of a new allocation.
    private var spare: ByteBuffer?
    /// Buffers larger than this are not kept between calls (what an idle kept-alive connection may hold).
    private static let spareCapacity = 2048
    /// The header-field buffers of the last invocation, emptied, for the next request's head.
    var spareFields = HeaderFields()
    /// Header-field buffers larger than this (bytes and offsets) are not kept between calls.
    static let spareFieldsCapacity = 8192

    /// What a forwarded call needs again when its instance answers (kept here rather than in a closure per call).
    struct InFlightCall {
        var request: Request
        var route: EndpointRoute
        var variant: VariantRoute
        var instance: InstanceRoute
        var requestID: RequestID?
        var close: Bool
        /// The listener connection's context, held until the answer is written even if the caller left meanwhile.
        var context: ChannelHandlerContext
        var tried: [String]
        var modelStart: NIODeadline
    }

    struct PendingRecord {
        var endpoint: String
        var variant: String
        var zone: String
        var modelLatency: Int64?
        var result: InvocationRecord.Result
    }

    private enum Phase {
        case head
        case body
        /// The request is complete and its response not yet written.
        case responding
        /// A response with `connection: close` was written, or the peer went away: what still arrives is dropped
        /// until ``closeGently(_:)`` closes the connection.
        case closed
    }

    enum Kind {
        case invocation(endpoint: String)
        case other
        case unknown
    }

    struct Request {
        var head: HTTP1.RequestHead
        var kind: Kind
        var body: HTTP1.BodyBuffer
    }

    /// - Parameters:
    ///   - dataPlane: serves InvokeEndpoint; nil leaves every request to `responder`.
    ///   - zone: the zone of a zonal listener; nil for the regional endpoint, which routes across all zones.
    ///   - responder: answers requests that are not invocations; nil answers them with 404.
    public init(
        dataPlane: DataPlane?,
        zone: String?,
        responder: (any BufferedResponder)?,
        activity: ListenerActivity,
        maximumBodySize: Int
    ) {
        self.dataPlane = dataPlane
        self.zone = zone
        self.responder = responder
        self.activity = activity
        self.maximumBodySize = maximumBodySize
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard let dataPlane else { return }
        loop = dataPlane.context(for: context.eventLoop)
        if zone == nil { zone = dataPlane.listenerZone(of: context.channel.localAddress) }
        callerZone = zone ?? dataPlane.zone(of: context.channel.remoteAddress)
    }

    public func channelActive(context: ChannelHandlerContext) {
        activity.connectionOpened(context.channel)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        input = nil
        current = nil
        activity.connectionClosed(context.channel)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closed = phase { return }
        var bytes = unwrapInboundIn(data)
        if timingNextByte {
            received = .now()
            timingNextByte = false
            callerPause = received - responded
        }
        if input == nil || input?.readableBytes == 0 {
            input = bytes
        } else {
            if let consumed = input?.readerIndex, consumed > 4096 { input?.discardReadBytes() }
            input?.writeBuffer(&bytes)
        }
        process(context: context)
    }

    /// Holds reads back while a response is pending and the next requests' bytes pile up.
    public func read(context: ChannelHandlerContext) {
        switch phase {
        case .responding:
            if (input?.readableBytes ?? 0) >= HTTP1.maximumHeadSize {
                readHeld = true
                return
            }
        case .head, .body, .closed:
            break
        }
        context.read()
    }

    /// Reads heads and bodies from `input` until a request is complete (and dispatched) or the bytes run out.
    private func process(context: ChannelHandlerContext) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while true {
            switch phase {
            case .head:
                guard let buffered = input, buffered.readableBytes > 0 else {
                    input = nil
                    return
                }
                let parsed: (head: HTTP1.RequestHead, length: Int)?
                do {
                    parsed = try HTTP1.parseRequestHead(buffered, searched: &searched, reusing: &spareFields)
                } catch {
                    refuse(error, context: context)
                    return
                }
                guard let parsed else { return }
                input?.moveReaderIndex(forwardBy: parsed.length)
                begin(parsed.head, context: context)
            case .body:
                guard readBody(context: context) else {
                    if input?.readableBytes == 0 { input = nil }
                    return
                }
                phase = .responding
                if input?.readableBytes == 0 { input = nil }
                if let request = current.take() { dispatch(request, context: context) }
            case .responding, .closed:
                return
            }
        }
    }

    private func begin(_ head: HTTP1.RequestHead, context: ChannelHandlerContext) {
        let kind: Kind
        if dataPlane != nil, head.method == "POST", let endpoint = Self.invocationEndpoint(head.target) {
            kind = .invocation(endpoint: endpoint)
        } else if responder != nil {
            kind = .other
        } else {
            kind = .unknown
        }
        let limit: Int
        if case .invocation = kind { limit = DataPlane.maximumPayloadSize } else { limit = maximumBodySize }
        var tooLarge = false
        if case .length(let length) = head.framing, length > limit { tooLarge = true }
        bodyReader = HTTP1.BodyReader(head.framing)
        current = Request(head: head, kind: kind, body: HTTP1.BodyBuffer(limit: limit, tooLarge: tooLarge))
        phase = .body
        if head.expectsContinue, head.framing != .length(0) {
            var interim = context.channel.allocator.buffer(capacity: 25)
            interim.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(interim), promise: nil)
        }
    }

    /// Moves body bytes from `input` into the current request; true once the body is complete.
    private func readBody(context: ChannelHandlerContext) -> Bool {
        while true {
            guard input != nil else { return false }
            let expected = bodyReader.remainingLength
            let piece: HTTP1.Piece
            do {
                piece = try bodyReader.next(&input!)
            } catch {
                refuse(error, context: context)
                return false
            }
            switch piece {
            case .needMore:
                return false
            case .data(var slice, let last):
                // Moved out: one reference to the body while it grows, so appending does not copy it.
                guard var request = current.take() else { return false }
                request.body.append(&slice, last: last, expected: expected, allocator: context.channel.allocator)
                current = request
            case .end:
                return true
            }
        }
    }

    /// Takes the request (`consuming`): an invocation moves it into its in-flight call without copying its fields.
    private func dispatch(_ request: consuming Request, context: ChannelHandlerContext) {
        switch request.kind {
        case .invocation(let endpoint):
            handleInvocation(request, endpoint: endpoint, context: context)
        case .unknown:
            let keepGoing = activity.requestStarted()
            let path = request.head.target.split(separator: "?").first.map(String.init) ?? request.head.target
            fail(
                ServiceError(
                    code: "UnknownOperationException",
                    message:
                        "No API at \(request.head.method) \(path). This runtime endpoint serves POST /endpoints/{EndpointName}/invocations.",
                    status: 404
                ),
                head: request.head,
                requestID: loop?.nextRequestID(),
                close: !keepGoing,
                context: context
            )
        case .other:
            passOn(request, context: context)
        }
    }

    /// Hands a request that is not an invocation to the responder, buffered.
    private func passOn(_ request: Request, context: ChannelHandlerContext) {
        guard let responder else { return }
        let head = HTTPRequestHead(
            version: HTTPVersion(major: 1, minor: request.head.minorVersion),
            method: HTTPMethod(rawValue: request.head.method),
            uri: request.head.target,
            headers: HTTPHeaders(request.head.headers.map { ($0.name, $0.value) })
        )
        let keepGoing = activity.requestStarted()
        if request.body.tooLarge {
            writeBuffered(responder.bodyTooLarge(head), request: request.head, close: true, context: context)
            return
        }
        let buffered = BufferedRequest(
            head: head,
            body: request.body.bytes.map { Array($0.readableBytesView) } ?? [],
            remoteAddress: context.channel.remoteAddress
        )
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let requestHead = request.head
        // Counted like an exchange with an instance: its answer comes back from another thread as a task, which
        // does not wake a loop that polls before sleeping (BusyPoll), so a loop does not poll while one is out.
        loop?.busyPoll.exchangeStarted()
        context.eventLoop.makeFutureWithTask {
            await responder.respond(to: buffered)
        }.whenComplete { result in  // the responder answers every request, errors included: it cannot fail
            let (handler, context) = bound.value
            handler.loop?.busyPoll.exchangeEnded()
            guard case .success(let response) = result else { return }
            handler.writeBuffered(response, request: requestHead, close: !keepGoing, context: context)
        }
    }

    private func writeBuffered(
        _ response: BufferedResponse,
        request: HTTP1.RequestHead,
        close: Bool,
        context: ChannelHandlerContext
    ) {
        let keepAlive = request.keepAlive && !close
        var out = context.channel.allocator.buffer(capacity: 256 + response.body.count)
        Self.writeStatusLine(&out, minorVersion: request.minorVersion, status: Int(response.status.code))
        for (name, value) in response.headers {
            if HTTP1.equalsIgnoringCase(name, "content-length") || HTTP1.equalsIgnoringCase(name, "connection") {
                continue
            }
            Self.writeHeader(&out, name, value)
        }
        Self.writeHeader(&out, "content-length", String(response.body.count))
        if !keepAlive { out.writeStaticString("connection: close\r\n") }
        out.writeStaticString("\r\n")
        if request.method != "HEAD" { out.writeBytes(response.body) }
        finish(out, body: nil, keepAlive: keepAlive, context: context)
    }

    /// Answers a request that could not be read, and closes the connection: its framing can no longer be trusted.
    private func refuse(_ error: HTTP1.ParseError, context: ChannelHandlerContext) {
        phase = .closed
        input = nil
        current = nil
        let body = ServiceError(code: "ValidationError", message: error.message, status: error.status).jsonBody
            .serialized()
        var out = context.channel.allocator.buffer(capacity: 256)
        Self.writeStatusLine(&out, minorVersion: 1, status: error.status)
        out.writeStaticString("content-type: application/json\r\nx-amzn-ErrorType: ValidationError\r\n")
        Self.writeHeader(&out, "content-length", String(body.utf8.count))
        out.writeStaticString("connection: close\r\n\r\n")
        out.writeString(body)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in Self.closeGently(channel) }
    }

    /// An empty buffer with room for `capacity` bytes: the spare one when NIO no longer holds it (clearing a buffer
    /// that is still referenced elsewhere copies nothing and allocates, as a new one would).
    func outputBuffer(capacity: Int, context: ChannelHandlerContext) -> ByteBuffer {
        guard var buffer = spare else { return context.channel.allocator.buffer(capacity: capacity) }
        spare = nil
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// Keeps a buffer just handed to NIO for the next ``outputBuffer(capacity:context:)``.
    func keepSpare(_ buffer: ByteBuffer) {
        if buffer.capacity <= Self.spareCapacity { spare = buffer }
    }

    /// Writes a response (`head`, then `body` if given) and moves to the next request: pipelined bytes are read at
    /// once; with `keepAlive` false the connection closes gently once the response is out (``closeGently(_:)``).
    func finish(_ head: ByteBuffer, body: ByteBuffer?, keepAlive: Bool, context: ChannelHandlerContext) {
        activity.requestFinished()
        guard case .responding = phase else {
            recordMetrics()  // the caller went away meanwhile; the call still happened
            return
        }
        if body != nil { context.write(wrapOutboundOut(head), promise: nil) }
        let last = wrapOutboundOut(body ?? head)
        if keepAlive {
            context.writeAndFlush(last, promise: nil)
            keepSpare(head)
        } else {
            let channel = context.channel
            context.writeAndFlush(last).whenComplete { _ in Self.closeGently(channel) }
        }
        recordMetrics()
        guard keepAlive else {
            phase = .closed
            input = nil
            resumeReading(context: context)  // a gentle close reads (and drops) what the peer still sends
            return
        }
        phase = .head
        if let input, input.readableBytes > 0 {
            received = .now()
        } else {
            timingNextByte = true
            if let busyPoll = loop?.busyPoll, busyPoll.isActive {
                responded = .now()
                if callerPause <= busyPoll.window {
                    busyPoll.pollBeforeSleeping(on: context.eventLoop, whileInFlight: 0)
                }
            }
        }
        resumeReading(context: context)
        process(context: context)
    }

    private func resumeReading(context: ChannelHandlerContext) {
        guard readHeld else { return }
        readHeld = false
        context.read()
    }

    private func recordMetrics() {
        guard let record = pendingRecord, let loop else { return }
        pendingRecord = nil
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

    /// Closes a connection after its last response: first only the output (the peer reads the response and an
    /// end of stream), while what it still sends is read and dropped — closing a socket with unread bytes would
    /// send a reset, which can destroy the response before the peer reads it — then, after 2 s or when the peer
    /// closes, the rest.
    static func closeGently(_ channel: any Channel) {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.close(mode: .output, promise: promise)
        promise.futureResult.whenComplete { result in
            if case .failure = result {
                channel.close(promise: nil)
                return
            }
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }

    // MARK: Writing

    static func writeStatusLine(_ out: inout ByteBuffer, minorVersion: Int, status: Int) {
        if status == 200 {
            out.writeStaticString(minorVersion == 0 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n")
            return
        }
        out.writeStaticString(minorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        out.writeString(String(status))
        out.writeStaticString(" ")
        out.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        out.writeStaticString("\r\n")
    }

    @inline(__always)
    static func writeHeader(_ out: inout ByteBuffer, _ name: String, _ value: String) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }
}

@available(*, unavailable)
extension HTTPConnectionHandler: Sendable {}

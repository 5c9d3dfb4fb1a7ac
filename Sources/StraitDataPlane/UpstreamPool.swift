import NIOCore
import NIOPosix

/// What came back from an instance.
enum UpstreamOutcome {
    case response(HTTP1.ResponseHead, ByteBuffer)
    /// No connection could be made, or the request's write failed on a new one: the request did not reach the
    /// instance whole, so another instance may take the call.
    case connectFailed
    /// The connection broke after the request was (perhaps) written: the call must not be repeated.
    case broken
    /// A kept-alive connection turned out closed by the instance before a byte of the answer came (the instance
    /// went away, or closed the idle connection as the request went out), or a new one was reset at once with
    /// nothing received (an instance on its way out): the call is tried once more, on a fresh connection.
    case staleConnection
    case timedOut
    /// The instance's answer is larger than SageMaker's payload limit.
    case responseTooLarge
    /// The instance's answer is not HTTP/1.1 that can be read (the reason says why); the connection is closed.
    case malformed(String)
}

/// Who an upstream exchange answers, on the event loop of its connection: the listener's connection handler whose
/// call it is. A class-bound delegate rather than a completion closure, so a forwarded call allocates no closure
/// context and no box for what the closure would capture.
protocol UpstreamClient: AnyObject {
    func upstreamFinished(_ outcome: UpstreamOutcome)
}

/// Kept-alive HTTP/1.1 connections to instances, for one event loop: connections are made on that loop, so a
/// forwarded call never leaves it.
// Confined to `eventLoop` (owned by a LoopContext).
final class UpstreamPool {
    private let eventLoop: any EventLoop
    /// Idle connections by instance address (`host:port` or the Unix socket's path).
    private var idle: [String: IdleConnections] = [:]
    /// The entry of `idle` used last. Calls on a loop mostly go to the same instances, and their keys are the routing
    /// snapshot's strings, equal to this one's at once (same storage): no hash of a socket path per call.
    private var recent: (key: String, connections: IdleConnections)?
    /// Idle connections kept per instance.
    private let maximumIdlePerInstance = 64

    /// The loop's polling before it sleeps, which an exchange asks for once its request is out.
    let busyPoll: BusyPoll

    init(eventLoop: any EventLoop, busyPoll: BusyPoll = BusyPoll(window: .zero)) {
        self.eventLoop = eventLoop
        self.busyPoll = busyPoll
    }

    /// Sends one request — `request` (the head, and the body when small), then `body` if given — to the instance at
    /// `hostHeader` (`host:port`) or its Unix socket, on a pooled or new connection, and tells `client` the outcome
    /// on this loop (possibly before this returns).
    func send(
        host: String,
        port: Int,
        hostHeader: String,
        unixSocket: String? = nil,
        request: ByteBuffer,
        body: ByteBuffer?,
        timeout: TimeAmount,
        client: any UpstreamClient
    ) {
        eventLoop.assertInEventLoop()
        let key = unixSocket ?? hostHeader
        if let connections = idleConnections(key, creating: false) {
            while let handler = connections.handlers.popLast() {
                if handler.isUsable {
                    handler.exchange(request, body: body, timeout: timeout, reused: true, client: client)
                    return
                }
            }
        }
        let pending = NIOLoopBound((self, client), eventLoop: eventLoop)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(2))
            // Writable only while nothing at all waits in the channel's write buffer: `UpstreamHandler.exchange`
            // reads "the request was written whole" from `isWritable`.
            .channelOption(.writeBufferWaterMark, value: .init(low: 1, high: 1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(pool: pending.value.0, key: key))
                }
            }
        let connected: EventLoopFuture<any Channel>
        if let unixSocket {
            connected = bootstrap.connect(unixDomainSocketPath: unixSocket)
        } else {
            bootstrap = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
            connected = bootstrap.connect(host: host, port: port)
        }
        connected.whenComplete { result in
            let client = pending.value.1
            guard case .success(let channel) = result,
                let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
            else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                client.upstreamFinished(.connectFailed)
                return
            }
            handler.exchange(request, body: body, timeout: timeout, reused: false, client: client)
        }
    }

    /// Keeps a connection whose exchange ended cleanly for the next call to its instance.
    fileprivate func release(_ handler: UpstreamHandler) {
        guard let connections = idleConnections(handler.key, creating: true) else { return }
        if connections.handlers.count < maximumIdlePerInstance {
            connections.handlers.append(handler)
        } else {
            handler.close()
        }
    }

    /// Drops a connection that closed (the instance closed it, or went away); with the last one, the address.
    fileprivate func forget(_ handler: UpstreamHandler) {
        guard let connections = idleConnections(handler.key, creating: false) else { return }
        connections.handlers.removeAll { $0 === handler }
        if connections.handlers.isEmpty {
            idle[handler.key] = nil
            recent = nil
        }
    }

    /// The idle connections kept for `key` (made when `creating`).
    private func idleConnections(_ key: String, creating: Bool) -> IdleConnections? {
        if let recent, recent.key == key { return recent.connections }
        var connections = idle[key]
        if connections == nil, creating {
            connections = IdleConnections()
            idle[key] = connections
        }
        if let connections { recent = (key, connections) }
        return connections
    }
}

/// The idle connections to one instance. A class, so that taking one and giving it back reads the dictionary
/// instead of mutating through its `_modify` accessor, whose coroutine frame is a heap allocation per call.
private final class IdleConnections {
    var handlers: [UpstreamHandler] = []
}

/// One upstream connection: writes a request and reads its response, framed by hand (``HTTP1``), one exchange at a
/// time.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let pool: UpstreamPool
    let key: String
    private var context: ChannelHandlerContext?
    /// Whom the exchange in flight answers; nil between exchanges.
    private var client: (any UpstreamClient)?
    private var input: ByteBuffer?
    private var searched = 0
    private var head: HTTP1.ResponseHead?
    private var bodyReader = HTTP1.BodyReader(.length(0))
    private var body = HTTP1.BodyBuffer(limit: DataPlane.maximumPayloadSize)
    /// When the exchange in flight times out; one timer per connection, re-armed only when it fires early.
    private var deadline = NIODeadline.distantFuture
    private var timer: Scheduled<Void>?
    private var receivedAnything = false
    private var reused = false
    private var sent = NIODeadline.now()
    /// How long the last answer on this connection took: the loop polls for the next one (``BusyPoll``) only while
    /// answers come within its window.
    private var lastAnswer = TimeAmount.zero
    /// False once the connection must not carry another request.
    private var reusable = true
    /// Where the write of the exchange's request stands: a failed one never reached the instance whole.
    private var requestWrite = RequestWrite.pending
    /// True while the request's `writeAndFlush` runs: a write that fails there closes the channel inside the call.
    private var writing = false

    private enum RequestWrite {
        case pending
        case written
        case failed
    }

    /// The instance reset the connection (ECONNRESET, EPIPE).
    private var resetByPeer = false

    init(pool: UpstreamPool, key: String) {
        self.pool = pool
        self.key = key
    }

    var isUsable: Bool { reusable && context?.channel.isActive == true }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func close() {
        reusable = false
        context?.close(promise: nil)
    }

    func exchange(
        _ request: ByteBuffer,
        body: ByteBuffer?,
        timeout: TimeAmount,
        reused: Bool,
        client: any UpstreamClient
    ) {
        guard let context, reusable else {
            client.upstreamFinished(.connectFailed)
            return
        }
        self.reused = reused
        self.client = client
        pool.busyPoll.exchangeStarted()
        head = nil
        self.body = HTTP1.BodyBuffer(limit: DataPlane.maximumPayloadSize)
        receivedAnything = false
        sent = .now()
        deadline = sent + timeout
        armTimer(context.eventLoop)
        requestWrite = .pending
        resetByPeer = false
        // A request whose write fails never reached the instance whole: it can go to another instance. One that is
        // still being written when the answer is complete (an instance that answered without reading it all)
        // leaves the connection unfit for another request — so a connection is reused only once its write has
        // succeeded, and the outcome set here is always this exchange's. On a kept-alive connection the flush
        // almost always writes the whole request at once (or fails at once, closing the channel inside the call);
        // only a request left buffered (a large body, an instance not reading, the first write on a connection
        // NIO is still setting up) needs a promise, on an empty write queued behind it. This holds while nothing
        // sits between this handler and the socket: an outbound handler that held writes back (TLS, say) would
        // make "nothing buffered in the channel" untrue of the request, and needs the promise on every write.
        writing = true
        if let body {
            context.write(wrapOutboundOut(request), promise: nil)
            context.writeAndFlush(wrapOutboundOut(body), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        }
        writing = false
        guard requestWrite == .pending, self.client != nil, context.channel.isActive else { return }
        // Nothing is buffered exactly when the channel is writable: its write buffer's watermarks are 1 byte (see
        // UpstreamPool.send). An atomic load, where asking for `.bufferedWritableBytes` ran NIO's option lookup (a
        // chain of dynamic casts and generic metadata look-ups) on every call.
        if context.channel.isWritable {
            requestWrite = .written
            if lastAnswer <= pool.busyPoll.window {
                pool.busyPoll.pollBeforeSleeping(on: context.eventLoop, whileInFlight: 1)
            }
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { result in
            bound.value.requestWrite = if case .success = result { .written } else { .failed }
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
    }

    private func armTimer(_ eventLoop: any EventLoop) {
        guard timer == nil else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        timer = eventLoop.scheduleTask(deadline: deadline) { bound.value.timerFired() }
    }

    private func timerFired() {
        timer = nil
        guard client != nil, let context else { return }
        if NIODeadline.now() >= deadline {
            finish(.timedOut)
        } else {
            armTimer(context.eventLoop)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        receivedAnything = true
        guard client != nil else {
            close()  // bytes nobody asked for: the connection's framing is lost
            return
        }
        if input == nil || input?.readableBytes == 0 {
            input = bytes
        } else {
            input?.writeBuffer(&bytes)
        }
        readResponse()
    }

    private func readResponse() {
        while client != nil {
            guard let head else {
                guard let buffered = input, buffered.readableBytes > 0 else { return }
                var parsed: HTTP1.ResponseHead?
                let length: Int?
                do {
                    length = try HTTP1.parseResponseHead(buffered, searched: &searched, into: &parsed)
                } catch {
                    finish(.malformed(error.reason))
                    return
                }
                guard let length, let responseHead = parsed.take() else { return }
                input?.moveReaderIndex(forwardBy: length)
                let (status, framing) = (responseHead.status, responseHead.framing)
                if status < 200 {
                    // Interim responses (100 Continue, 103) precede the answer; 101 would switch protocols.
                    if status == 101 { finish(.malformed("101 Switching Protocols")) }
                    continue
                }
                self.head = consume responseHead
                if case .length(let length) = framing, length > DataPlane.maximumPayloadSize {
                    finish(.responseTooLarge)
                    return
                }
                bodyReader = HTTP1.BodyReader(framing)
                continue
            }
            guard readBody() else { return }
            finish(.response(head, body.bytes ?? ByteBuffer()))
        }
    }

    /// Moves body bytes from `input`; true once the body is complete.
    private func readBody() -> Bool {
        while true {
            guard input != nil, let allocator = context?.channel.allocator else { return false }
            let expected = bodyReader.remainingLength
            let piece: HTTP1.Piece
            do {
                piece = try bodyReader.next(&input!)
            } catch {
                finish(.malformed(error.reason))
                return false
            }
            switch piece {
            case .needMore:
                return false
            case .data(var slice, let last):
                body.append(&slice, last: last, expected: expected, allocator: allocator)
                if body.tooLarge {
                    finish(.responseTooLarge)
                    return false
                }
            case .end:
                return true
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reusable = false
        timer?.cancel()
        timer = nil
        pool.forget(self)
        if let head, bodyReader.endsWithConnection {
            finish(.response(head, body.bytes ?? ByteBuffer()))
        } else {
            finish(failedBeforeAnswer)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reusable = false
        if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            resetByPeer = true
        }
        finish(failedBeforeAnswer)
        context.close(promise: nil)
    }

    /// How a connection that ended before the answer ends the exchange. A kept-alive connection the instance had
    /// already closed shows it at once: no byte back, within a few milliseconds of the write, or a failed write;
    /// the call is tried again. So does a new connection reset within those milliseconds with no byte back: an
    /// instance that is exiting still completes handshakes for a moment (its listening socket closes with the
    /// last of its threads) and then resets them unread — seen in the zone-loss test right after a SIGKILL. A
    /// request whose write failed on a new connection never reached the instance either: another instance takes
    /// it. Otherwise the instance may have run the request, which must not be repeated.
    private var failedBeforeAnswer: UpstreamOutcome {
        let atOnce = NIODeadline.now() - sent < .milliseconds(10)
        let notDelivered = requestWrite == .failed || writing
        if !receivedAnything, (reused && (notDelivered || atOnce)) || (resetByPeer && atOnce) {
            return .staleConnection
        }
        return notDelivered && !receivedAnything ? .connectFailed : .broken
    }

    /// Ends the exchange: the connection goes back to the pool when the answer was whole and nothing else came.
    private func finish(_ outcome: UpstreamOutcome) {
        guard let client else { return }
        self.client = nil
        pool.busyPoll.exchangeEnded()
        var keep = false
        if case .response(let head, _) = outcome {
            lastAnswer = .now() - sent
            keep = head.keepAlive && reusable && requestWrite == .written && (input?.readableBytes ?? 0) == 0
        }
        head = nil
        body = HTTP1.BodyBuffer(limit: DataPlane.maximumPayloadSize)
        input = nil
        searched = 0
        if keep, context?.channel.isActive == true {
            pool.release(self)
        } else {
            close()
        }
        client.upstreamFinished(outcome)
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}

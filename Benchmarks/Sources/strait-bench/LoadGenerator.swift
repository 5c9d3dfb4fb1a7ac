import NIOCore
import NIOHTTP1
import NIOPosix

/// A closed-loop HTTP/1.1 load generator: `concurrency` kept-alive connections, each sending the same request again
/// as soon as the previous answer is complete, until `total` requests are done. All connections share one event
/// loop, so the bookkeeping needs no locks. Latency is measured from writing a request to the end of its response.
final class LoadRun: @unchecked Sendable {  // confined to `eventLoop`
    let eventLoop: any EventLoop
    let head: HTTPRequestHead
    let body: ByteBuffer
    private(set) var remaining: Int
    private(set) var latencies: [Int64] = []
    private(set) var failures = 0
    private var open = 0
    let done: EventLoopPromise<Void>

    init(eventLoop: any EventLoop, head: HTTPRequestHead, body: ByteBuffer, total: Int) {
        self.eventLoop = eventLoop
        self.head = head
        self.body = body
        self.remaining = total
        self.latencies.reserveCapacity(total)
        self.done = eventLoop.makePromise()
    }

    func take() -> Bool {
        guard remaining > 0 else { return false }
        remaining -= 1
        return true
    }

    func record(_ nanoseconds: Int64, ok: Bool) {
        latencies.append(nanoseconds)
        if !ok { failures += 1 }
    }

    func connectionOpened() { open += 1 }

    func connectionClosed() {
        open -= 1
        if open == 0 { done.succeed(()) }
    }
}

final class LoadHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let run: LoadRun
    private var started = NIODeadline.now()
    private var status: UInt = 0

    init(run: LoadRun) { self.run = run }

    func channelActive(context: ChannelHandlerContext) {
        run.connectionOpened()
        sendNext(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        run.connectionClosed()
    }

    private func sendNext(context: ChannelHandlerContext) {
        guard run.take() else {
            context.close(promise: nil)
            return
        }
        started = .now()
        context.write(wrapOutboundOut(.head(run.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(run.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status.code
        case .body: break
        case .end:
            run.record((NIODeadline.now() - started).nanoseconds, ok: status == 200)
            sendNext(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Runs `total` requests at `concurrency` against `host:port`; returns the latencies (ns), failures and wall time.
func runLoad(
    group: MultiThreadedEventLoopGroup,
    host: String,
    port: Int,
    head: HTTPRequestHead,
    body: [UInt8],
    total: Int,
    concurrency: Int
) async throws -> (latencies: [Int64], failures: Int, seconds: Double) {
    let eventLoop = group.next()
    let run = LoadRun(
        eventLoop: eventLoop,
        head: head,
        body: ByteBuffer(bytes: body),
        total: total
    )
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<concurrency {
        _ = try await ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(LoadHandler(run: run))
                }
            }
            .connect(host: host, port: port).get()
    }
    try await run.done.futureResult.get()
    let elapsed = clock.now - start
    let seconds = elapsed / .seconds(1)
    return try await eventLoop.submit { (run.latencies, run.failures, seconds) }.get()
}

/// A one-off request on its own connection (for setup calls and scrapes).
func request(
    group: MultiThreadedEventLoopGroup,
    host: String,
    port: Int,
    head: HTTPRequestHead,
    body: [UInt8]
) async throws -> (status: UInt, body: [UInt8]) {
    let eventLoop = group.next()
    let promise = eventLoop.makePromise(of: (UInt, [UInt8]).self)
    let channel = try await ClientBootstrap(group: eventLoop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(OneShotHandler(promise: promise))
            }
        }
        .connect(host: host, port: port).get()
    var headers = head.headers
    headers.replaceOrAdd(name: "content-length", value: String(body.count))
    headers.replaceOrAdd(name: "connection", value: "close")
    var fullHead = head
    fullHead.headers = headers
    channel.write(HTTPClientRequestPart.head(fullHead), promise: nil)
    channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    let result = try await promise.futureResult.get()
    try? await channel.close()
    return result
}

final class OneShotHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: EventLoopPromise<(UInt, [UInt8])>
    private var status: UInt = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(UInt, [UInt8])>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status.code
        case .body(let buffer): body += buffer.readableBytesView
        case .end: promise.succeed((status, body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}

import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import StraitDataPlane

/// A real instance on loopback for the pool: answers each request (`content-length` framed) with `200 ok` once all
/// of its body has arrived; starts reading each connection only after `readDelay` (so a large request stays partly
/// buffered on the sender's side); when `closeAfterAnswer`, closes the connection a moment after each answer (an
/// instance dropping idle connections).
private final class TestInstance: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let readDelay: TimeAmount
    private let closeAfterAnswer: Bool
    private var pending = ByteBuffer()

    init(readDelay: TimeAmount = .zero, closeAfterAnswer: Bool = false) {
        self.readDelay = readDelay
        self.closeAfterAnswer = closeAfterAnswer
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: readDelay) { bound.value.read() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        while let request = nextRequestLength(), pending.readableBytes >= request {
            pending.moveReaderIndex(forwardBy: request)
            context.writeAndFlush(
                wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")),
                promise: nil
            )
            if closeAfterAnswer {
                let channel = context.channel
                context.eventLoop.scheduleTask(in: .milliseconds(20)) { channel.close(promise: nil) }
            }
        }
        pending.discardReadBytes()
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.read() }

    /// Head and body length of the first request in `pending`, once its head is whole.
    private func nextRequestLength() -> Int? {
        let text = String(buffer: pending)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.upperBound]
        let length =
            head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        return head.utf8.count + length
    }
}

/// Passes the status of the instance's answer (0 for no answer) to a promise.
private final class StatusPromise: UpstreamClient {
    let promise: EventLoopPromise<Int>
    init(_ promise: EventLoopPromise<Int>) { self.promise = promise }
    func upstreamFinished(_ outcome: UpstreamOutcome) {
        if case .response(let head, _) = outcome { promise.succeed(head.status) } else { promise.succeed(0) }
    }
}

@Suite(.serialized) struct UpstreamPoolTests {
    /// Sends `calls` requests with a body of `bodySize` bytes one after another through one pool to a slow reader;
    /// returns the statuses and how many connections the instance accepted.
    private func send(calls: Int, bodySize: Int) async throws -> (statuses: [Int], connections: Int) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let acceptLoop = serverLoop.next()
        let accepted = try await acceptLoop.submit { NIOLoopBoundBox(0, eventLoop: acceptLoop) }.get()
        let server = try await ServerBootstrap(group: serverLoop)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                accepted.value += 1
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TestInstance(readDelay: .milliseconds(50)))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        let loop = group.next()
        let pool = try await loop.submit { NIOLoopBound(UpstreamPool(eventLoop: loop), eventLoop: loop) }.get()
        var statuses: [Int] = []
        for _ in 0..<calls {
            let promise = loop.makePromise(of: Int.self)
            loop.execute {
                var request = ByteBuffer(string: "POST /invocations HTTP/1.1\r\nhost: 127.0.0.1:\(port)\r\n")
                request.writeString("content-length: \(bodySize)\r\n\r\n")
                let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: bodySize)
                pool.value.send(
                    host: "127.0.0.1",
                    port: port,
                    hostHeader: "127.0.0.1:\(port)",
                    request: request,
                    body: bodySize > 0 ? body : nil,
                    timeout: .seconds(10),
                    client: StatusPromise(promise)
                )
            }
            statuses.append(try await promise.futureResult.get())
        }
        let connections = try await acceptLoop.submit { accepted.value }.get()
        try await server.close()
        try await group.shutdownGracefully()
        try await serverLoop.shutdownGracefully()
        return (statuses, connections)
    }

    /// Sends calls to instances on loopback, one after another, each to the instance `plan` names (an index into
    /// `closingFirst`); instance i closes each of its first `closingFirst[i]` connections a moment after answering.
    /// Returns the statuses and how many connections each instance accepted.
    private func call(_ plan: [Int], closingFirst: [Int]) async throws -> (statuses: [Int], accepted: [Int]) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let acceptLoop = serverLoop.next()
        var servers: [(channel: any Channel, accepted: NIOLoopBoundBox<Int>, closed: NIOLoopBoundBox<Int>)] = []
        for closing in closingFirst {
            let (accepted, closed) = try await acceptLoop.submit {
                (NIOLoopBoundBox(0, eventLoop: acceptLoop), NIOLoopBoundBox(0, eventLoop: acceptLoop))
            }.get()
            let channel = try await ServerBootstrap(group: serverLoop)
                .childChannelInitializer { channel in
                    accepted.value += 1
                    channel.closeFuture.whenComplete { _ in closed.value += 1 }
                    let closeAfterAnswer = accepted.value <= closing
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(TestInstance(closeAfterAnswer: closeAfterAnswer))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            servers.append((channel, accepted, closed))
        }
        let loop = group.next()
        let pool = try await loop.submit { NIOLoopBound(UpstreamPool(eventLoop: loop), eventLoop: loop) }.get()
        var statuses: [Int] = []
        for instance in plan {
            let port = servers[instance].channel.localAddress!.port!
            let promise = loop.makePromise(of: Int.self)
            loop.execute {
                pool.value.send(
                    host: "127.0.0.1",
                    port: port,
                    hostHeader: "127.0.0.1:\(port)",
                    request: ByteBuffer(string: "POST /invocations HTTP/1.1\r\nhost: 127.0.0.1:\(port)\r\n\r\n"),
                    body: nil,
                    timeout: .seconds(10),
                    client: StatusPromise(promise)
                )
            }
            statuses.append(try await promise.futureResult.get())
            // Before the next call, every connection an instance closes after answering is closed, and the pool's
            // loop has seen it (a task submitted after the close runs after the loop handled the end of stream).
            let counts = servers.map { ($0.accepted, $0.closed) }
            var settled = false
            for _ in 0..<1000 where !settled {
                settled = try await acceptLoop.submit {
                    zip(counts, closingFirst).allSatisfy { count, closing in
                        count.1.value >= min(count.0.value, closing)
                    }
                }.get()
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(settled, "an instance's connection was still open 5 s after it answered")
            try await loop.submit {}.get()
        }
        let counters = servers.map(\.accepted)
        let accepted = try await acceptLoop.submit { counters.map(\.value) }.get()
        for server in servers { try await server.channel.close() }
        try await group.shutdownGracefully()
        try await serverLoop.shutdownGracefully()
        return (statuses, accepted)
    }

    /// Calls alternating between instances each reuse their own instance's connection; an instance that drops its
    /// idle connection gets a new one on the next call.
    @Test func alternatingInstancesKeepTheirOwnConnections() async throws {
        let (statuses, accepted) = try await call(
            Array(repeating: [0, 1, 2], count: 3).flatMap { $0 },
            closingFirst: [0, 0, .max]
        )
        #expect(statuses == Array(repeating: 200, count: 9))
        #expect(accepted == [1, 1, 3])
    }

    /// An instance whose only idle connection closed (its entry forgotten) gets a new one, which is kept and found
    /// again after a call to another instance.
    @Test func aNewConnectionAfterTheLastClosedIsKeptAndFoundAgain() async throws {
        let (statuses, accepted) = try await call([0, 0, 1, 0], closingFirst: [1, 0])
        #expect(statuses == [200, 200, 200, 200])
        #expect(accepted == [2, 1])
    }

    /// A small request is written whole at once: its connection is kept for the next call.
    @Test func aConnectionIsReusedAfterASmallRequest() async throws {
        let (statuses, connections) = try await send(calls: 3, bodySize: 64)
        #expect(statuses == [200, 200, 200])
        #expect(connections == 1)
    }

    /// A 4 MiB body the instance reads only after a while stays partly buffered after the flush; the connection is
    /// still kept once that write completes.
    @Test func aConnectionIsReusedAfterARequestWrittenInPieces() async throws {
        let (statuses, connections) = try await send(calls: 2, bodySize: 4 * 1024 * 1024)
        #expect(statuses == [200, 200])
        #expect(connections == 1)
    }
}

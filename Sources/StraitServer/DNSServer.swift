import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import StraitCore
import StraitNetwork
import Synchronization

/// Strait's private DNS: answers A queries for interface endpoints' names over UDP and TCP (RFC 1035 and 7766) on
/// one address and port, from a snapshot the network republishes on every change. Off unless `--dns-listen` asks.
final class DNSServer: Service {
    let host: String
    private let requestedPort: Int
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let snapshot = NIOLockedValueBox(DNSSnapshot.empty)
    private let channels = Mutex<[any Channel]>([])
    private let boundPort = Mutex<Int?>(nil)
    /// TCP connections open now; past `maximumStreams` new ones are closed at once.
    private let streams = StreamCount()
    static let maximumStreams = 64

    init(host: String, port: Int, group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.host = host
        self.requestedPort = port
        self.group = group
        self.logger = logger
    }

    /// Makes `snapshot` the one answered from, from the next query on.
    func publish(_ snapshot: DNSSnapshot) { self.snapshot.withLockedValue { $0 = snapshot } }

    /// The port both sockets are bound to (after ``bind()``).
    var port: Int? { boundPort.withLock { $0 } }

    /// Binds UDP on the port asked for, then TCP on the same port. For port 0, UDP takes a free port, and if TCP
    /// finds that port taken (another process's TCP socket), both try again on another free port.
    func bind() async throws {
        let answer: @Sendable (DNSQuery, UInt32?, Int) -> [UInt8] = { [snapshot] query, source, limit in
            DNSResolver.answer(query, source: source, snapshot: snapshot.withLockedValue { $0 }, maxSize: limit)
        }
        var attempt = 1
        while true {
            let udp = try await bindDatagrams(answer: answer)
            let port = udp.localAddress?.port ?? requestedPort
            do {
                let tcp = try await bindStreams(port: port, answer: answer)
                channels.withLock { $0 = [udp, tcp] }
                boundPort.withLock { $0 = port }
                return
            } catch let error as IOError where error.errnoCode == EADDRINUSE && requestedPort == 0 && attempt < 16 {
                try? await udp.close()
                attempt += 1
            } catch {
                try? await udp.close()
                throw error
            }
        }
    }

    private func bindDatagrams(
        answer: @escaping @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]
    ) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSDatagramHandler(answer: answer))
                }
            }
            .bind(host: host, port: requestedPort).get()
    }

    private func bindStreams(
        port: Int,
        answer: @escaping @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]
    ) async throws -> any Channel {
        let streams = self.streams
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard streams.open(limit: Self.maximumStreams) else {
                    return channel.eventLoop.makeFailedFuture(ConnectionRefused())
                }
                channel.closeFuture.whenComplete { _ in streams.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                    try pipeline.addHandler(ByteToMessageHandler(DNSStreamDecoder()))
                    try pipeline.addHandler(DNSStreamHandler(answer: answer))
                }
            }
            .bind(host: host, port: port).get()
    }

    func run() async throws {
        let channels = channels.withLock { $0 }
        guard let first = channels.first else { throw CancellationError() }
        await withGracefulShutdownHandler {
            try? await first.closeFuture.get()
        } onGracefulShutdown: {
            for channel in channels { channel.close(promise: nil) }
        }
        for channel in channels { try? await channel.close() }
        logger.info("DNS server stopped")
    }
}

/// How many DNS-over-TCP connections are open.
private final class StreamCount: Sendable {
    private let count = Atomic<Int>(0)

    /// Counts one more connection if fewer than `limit` are open.
    func open(limit: Int) -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func close() { count.wrappingSubtract(1, ordering: .relaxed) }
}

/// The IPv4 address of a peer, in host order.
private func ipv4(_ address: SocketAddress?) -> UInt32? {
    guard let text = address?.ipAddress else { return nil }
    return IPv4CIDR.parseAddress(text)
}

/// The reply to one DNS message, or nil to stay silent (a response, or a header too short to answer).
private func reply(
    to bytes: [UInt8],
    source: UInt32?,
    stream: Bool,
    answer: @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]
) -> [UInt8]? {
    switch DNSMessage.parseQuery(bytes) {
    case .success(let query):
        let limit = stream ? DNSMessage.tcpResponseLimit : DNSMessage.udpResponseLimit(for: query)
        return answer(query, source, limit)
    case .failure(let failure):
        return failure.reply
    }
}

/// One datagram in, at most one out.
private final class DNSDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let answer: @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]

    init(answer: @escaping @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        guard let out = reply(to: bytes, source: ipv4(envelope.remoteAddress), stream: false, answer: answer) else {
            return
        }
        let buffer = context.channel.allocator.buffer(bytes: out)
        context.writeAndFlush(
            wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)),
            promise: nil
        )
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket error (an ICMP unreachable from a client that left) must not close the server.
    }
}

/// TCP framing: each message is preceded by its length in two bytes.
private struct DNSStreamDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        guard let message = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }
}

/// Answers each framed message on the connection; closes it after 10 s without a query or on bad input.
private final class DNSStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let answer: @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]

    init(answer: @escaping @Sendable (DNSQuery, UInt32?, Int) -> [UInt8]) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        guard let out = reply(to: bytes, source: ipv4(context.channel.remoteAddress), stream: true, answer: answer)
        else {
            context.close(promise: nil)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: out.count + 2)
        buffer.writeInteger(UInt16(truncatingIfNeeded: out.count))
        buffer.writeBytes(out)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

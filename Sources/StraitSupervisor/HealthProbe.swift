public import NIOCore
import NIOPosix

/// `GET /ping` against an instance, on raw NIO: the status code, or nil if the instance did not answer in time.
public struct HealthProbe: Sendable {
    public let group: any EventLoopGroup
    public let timeout: TimeAmount

    public init(group: any EventLoopGroup, timeout: TimeAmount = .seconds(2)) {
        self.group = group
        self.timeout = timeout
    }

    public func ping(host: String, port: Int) async -> Int? {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Int?.self)
        let timeout = self.timeout
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusLineHandler(promise: promise, host: host))
                }
            }
        let deadline = eventLoop.scheduleTask(in: timeout) { promise.succeed(nil) }
        bootstrap.connect(host: host, port: port).whenComplete { result in
            switch result {
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure:
                promise.succeed(nil)
            }
        }
        let status = try? await promise.futureResult.get()
        deadline.cancel()
        return status ?? nil
    }
}

/// Sends the request and reads the status code from the first line of the answer.
private final class StatusLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let promise: EventLoopPromise<Int?>
    private let host: String
    private var received = ByteBuffer()

    init(promise: EventLoopPromise<Int?>, host: String) {
        self.promise = promise
        self.host = host
    }

    func channelActive(context: ChannelHandlerContext) {
        var request = context.channel.allocator.buffer(capacity: 64)
        request.writeString("GET /ping HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        received.writeBuffer(&chunk)
        let bytes = received.readableBytesView
        guard let end = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            if received.readableBytes > 1024 { promise.succeed(nil) }
            return
        }
        let line = String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
        let parts = line.split(separator: " ")
        promise.succeed(parts.count >= 2 && parts[0].hasPrefix("HTTP/") ? Int(parts[1]) : nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.succeed(nil)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension StatusLineHandler: Sendable {}

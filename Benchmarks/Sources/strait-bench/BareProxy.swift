import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The floor of a proxy hop on SwiftNIO: a byte-for-byte forwarder (no HTTP parsing, no signature, no routing, no
/// metrics) with one upstream connection per client connection, on as many event loops as `strait serve` uses. Run
/// as a child process of the benchmark (`--bare-proxy-serve`) and measured in the same rounds as Strait and nginx, it
/// shows how much of Strait's hop is SwiftNIO's per-call machinery and the two extra sockets, and how much is Strait.
final class BareProxy {
    let process: Process
    let port: Int

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    /// Starts this executable again as the forwarder to `upstream`, listening on a free loopback port.
    static func start(upstream: (host: String, port: Int)) throws -> BareProxy {
        let port = try Loopback.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--bare-proxy-serve", "\(port)=\(upstream.host):\(upstream.port)"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        Children.started(process)
        let proxy = BareProxy(process: process, port: port)
        guard Loopback.waitUntilListening(port: port, process: process) else {
            proxy.stop()
            throw BenchError("the bare NIO forwarder did not start")
        }
        return proxy
    }

    func stop() { Children.stop(process) }

    /// The child's side: `spec` is `listenPort=host:port`. Serves until the process is terminated, or until the
    /// benchmark that started it is gone (a benchmark killed outright leaves no forwarder behind).
    static func serve(_ spec: String) throws -> Never {
        let parts = spec.split(separator: "=")
        guard parts.count == 2, let listenPort = Int(parts[0]), let colon = parts[1].lastIndex(of: ":"),
            let upstreamPort = Int(parts[1][parts[1].index(after: colon)...])
        else { throw BenchError("--bare-proxy-serve needs listenPort=host:port, not \(spec)") }
        let upstreamHost = String(parts[1][..<colon])
        // The benchmark ignores these signals while it installs its own handling; a child started then would
        // inherit "ignored" and could not be stopped.
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
        let parent = getppid()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        _ = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                // The upstream connection is made on the client connection's loop before the latter reads a byte.
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: upstreamHost, port: upstreamPort)
                    .flatMapThrowing { outbound in
                        let (client, instance) = Glue.pair()
                        try inbound.pipeline.syncOperations.addHandler(client)
                        try outbound.pipeline.syncOperations.addHandler(instance)
                    }
            }
            .bind(host: "127.0.0.1", port: listenPort)
            .wait()
        while getppid() == parent { sleep(1) }
        exit(0)
    }
}

/// One side of a forwarded connection: what it reads is written to the other side's channel.
private final class Glue: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: Glue?
    private var context: ChannelHandlerContext?

    static func pair() -> (Glue, Glue) {
        let first = Glue()
        let second = Glue()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.writeAndFlush(data, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        partner = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension Glue: Sendable {}

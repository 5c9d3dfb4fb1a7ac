import Foundation
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import StraitDataPlane

/// An upstream handler on a connected embedded channel with one request sent; `outcome` is what it completed with.
private final class SentRequest: UpstreamClient {
    let channel = EmbeddedChannel()
    let handler: UpstreamHandler
    var outcome: UpstreamOutcome?
    /// The loop's count of exchanges in flight (``BusyPoll``), with the exchange sent and when its outcome came.
    let calls = LoopCalls()
    private(set) var countedWhileSent = 0
    private(set) var countedWhenFinished: Int?

    /// - Parameter before: a handler placed between the upstream handler and the socket.
    init(reused: Bool = false, before: (any ChannelHandler)? = nil) throws {
        let pool = UpstreamPool(
            eventLoop: channel.eventLoop,
            busyPoll: BusyPoll(window: .microseconds(100), own: calls)
        )
        handler = UpstreamHandler(pool: pool, key: "test")
        if let before { try channel.pipeline.syncOperations.addHandler(before) }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        handler.exchange(
            ByteBuffer(string: "POST /invocations HTTP/1.1\r\ncontent-length: 0\r\n\r\n"),
            body: nil,
            timeout: .seconds(60),
            reused: reused,
            client: self
        )
        countedWhileSent = calls.count.load(ordering: .relaxed)
    }

    func upstreamFinished(_ outcome: UpstreamOutcome) {
        self.outcome = outcome
        countedWhenFinished = calls.count.load(ordering: .relaxed)
    }

    /// Every outcome ends the exchange's count: polling would stop for good if one were left counted.
    func expectCountsBalanced(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(countedWhileSent == 1 || outcome != nil, sourceLocation: sourceLocation)
        if outcome != nil { #expect(countedWhenFinished == 0, sourceLocation: sourceLocation) }
    }
}

/// The upstream connection's response framing, on an embedded channel.
@Suite struct UpstreamHandlerTests {
    /// Sends one request on a fresh embedded connection, feeds `responses` to it, and returns the outcome (nil if
    /// none came) and whether the connection is still open.
    private func exchange(_ responses: [String], closeAfter: Bool = false) throws -> (UpstreamOutcome?, Bool) {
        let sent = try SentRequest()
        let channel = sent.channel
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }?.hasPrefix("POST") == true)
        for response in responses { try channel.writeInbound(ByteBuffer(string: response)) }
        if closeAfter { channel.pipeline.fireChannelInactive() }
        sent.expectCountsBalanced()
        return (sent.outcome, channel.isActive)
    }

    private func body(_ outcome: UpstreamOutcome?) -> (status: Int, body: String)? {
        guard case .response(let head, let body) = outcome else { return nil }
        return (head.status, String(buffer: body))
    }

    @Test func aContentLengthAnswerInPieces() throws {
        let (outcome, open) = try exchange(["HTTP/1.1 200 OK\r\nContent-Le", "ngth: 5\r\n\r\nhe", "llo"])
        #expect(body(outcome)?.body == "hello")
        #expect(open)  // kept for the next call
    }

    @Test func aChunkedAnswer() throws {
        let (outcome, open) = try exchange([
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"
        ])
        #expect(body(outcome)?.body == "hello")
        #expect(open)
    }

    @Test func anAnswerThatEndsWithTheConnection() throws {
        let (outcome, _) = try exchange(["HTTP/1.0 200 OK\r\n\r\nhel", "lo"], closeAfter: true)
        #expect(body(outcome)?.body == "hello")
    }

    @Test func interimResponsesAreSkipped() throws {
        let (outcome, _) = try exchange(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 X\r\nContent-Length: 2\r\n\r\nno"])
        #expect(body(outcome)?.status == 503)
        #expect(body(outcome)?.body == "no")
    }

    @Test func malformedAnswersEndTheConnection() throws {
        for response in [
            "garbage\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            let (outcome, open) = try exchange([response])
            guard case .malformed = outcome else {
                Issue.record("expected malformed for \(response), got \(String(describing: outcome))")
                continue
            }
            #expect(!open)
        }
    }

    @Test func anAnswerOverTheLimitIsRefused() throws {
        let (outcome, open) = try exchange([
            "HTTP/1.1 200 OK\r\nContent-Length: \(DataPlane.maximumPayloadSize + 1)\r\n\r\n"
        ])
        guard case .responseTooLarge = outcome else {
            Issue.record("got \(String(describing: outcome))")
            return
        }
        #expect(!open)
    }

    @Test func bytesAfterTheAnswerCloseTheConnection() throws {
        let (outcome, open) = try exchange(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"])
        #expect(body(outcome)?.body == "ok")
        #expect(!open)
    }

    /// An exiting instance completes a handshake and then resets the connection unread: the call moves on. A reset
    /// that comes later may follow a request the instance ran: a ModelError.
    @Test func aResetAtOnceMovesTheCallAndALaterOneIsBroken() throws {
        for (delay, expectStale) in [(0, true), (30, false)] {
            let sent = try SentRequest()
            if delay > 0 { usleep(UInt32(delay * 1000)) }
            sent.channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
            sent.expectCountsBalanced()
            switch sent.outcome {
            case .staleConnection: #expect(expectStale)
            case .broken: #expect(!expectStale)
            default: Issue.record("unexpected \(String(describing: sent.outcome))")
            }
        }
    }

    @Test func aConnectionClosedBeforeTheAnswerIsBroken() throws {
        let (outcome, _) = try exchange(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], closeAfter: true)
        guard case .broken = outcome else {
            Issue.record("got \(String(describing: outcome))")
            return
        }
    }
}

/// Fails every write and closes the channel within the call, as NIO does when the socket's write fails.
private final class FailingWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.ioOnClosedChannel)
        context.close(promise: nil)
    }
}

@Suite struct UndeliveredRequestTests {
    private func outcome(reused: Bool) throws -> UpstreamOutcome? {
        let sent = try SentRequest(reused: reused, before: FailingWrites())
        sent.channel.pipeline.fireChannelInactive()
        sent.expectCountsBalanced()
        return sent.outcome
    }

    @Test func aRequestWhoseWriteFailedGoesElsewhere() throws {
        guard case .connectFailed = try outcome(reused: false) else {
            Issue.record("a new connection whose write failed should move the call")
            return
        }
        guard case .staleConnection = try outcome(reused: true) else {
            Issue.record("a kept-alive connection whose write failed should be retried")
            return
        }
    }
}

@Suite struct RequestIDTests {
    @Test func requestIDsAreUUIDShapedAndDistinct() {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let first = loop.nextRequestID()
        let second = loop.nextRequestID()
        #expect(first != second)
        for requestID in [first, second] {
            let id = requestID.description
            var written = ByteBuffer()
            requestID.write(to: &written)
            #expect(String(buffer: written) == id)
            let groups = id.split(separator: "-", omittingEmptySubsequences: false).map(\.count)
            #expect(groups == [8, 4, 4, 4, 12], "\(id)")
            #expect(id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || $0 == 0x2D })
        }
        #expect(first.description.hasSuffix("000000000001"))
        #expect(second.description.hasSuffix("000000000002"))
        var late = ByteBuffer()
        RequestID(prefix: "p-", counter: 0xABC_DEF0_1234).write(to: &late)
        #expect(String(buffer: late) == "p-0abcdef01234")
    }
}

import Foundation
import NIOCore
import NIOEmbedded
import Testing

@testable import StraitDataPlane

/// The connection handler's framing, on an embedded channel: with neither data plane nor responder every request
/// gets the 404 of a zonal listener, which is enough to see how requests are delimited and answered.
@Suite struct HTTPConnectionHandlerTests {
    private func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            HTTPConnectionHandler(
                dataPlane: nil,
                zone: nil,
                responder: nil,
                activity: ListenerActivity(),
                maximumBodySize: 1024
            )
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything written so far, as text.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// The status lines of the responses in `text` (a response's body runs straight into the next status line).
    private func statusLines(_ text: String) -> [String] {
        text.components(separatedBy: "HTTP/1.").dropFirst().map {
            "HTTP/1." + ($0.components(separatedBy: "\r\n").first ?? "")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let channel = try makeChannel()
        try channel.writeInbound(
            ByteBuffer(
                string:
                    "GET /first HTTP/1.1\r\nHost: x\r\n\r\nPOST /second HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /third HTTP/1.1\r\n\r\n"
            )
        )
        let text = try written(channel)
        #expect(statusLines(text).count == 3)
        let first = try #require(text.range(of: "GET /first"))
        let second = try #require(text.range(of: "POST /second"))
        let third = try #require(text.range(of: "GET /third"))
        #expect(first.lowerBound < second.lowerBound && second.lowerBound < third.lowerBound)
        #expect(text.contains("UnknownOperationException"))
        #expect(channel.isActive)
        _ = try? channel.finish()
    }

    @Test func aRequestSplitIntoSingleBytesIsOneRequest() throws {
        let channel = try makeChannel()
        let request = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        for byte in request.utf8 { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        let text = try written(channel)
        #expect(statusLines(text) == ["HTTP/1.1 404 Not Found"])
        _ = try? channel.finish()
    }

    @Test func aChunkedBodyIsReadToItsEnd() throws {
        let channel = try makeChannel()
        try channel.writeInbound(
            ByteBuffer(
                string:
                    "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /y HTTP/1.1\r\n\r\n"
            )
        )
        #expect(statusLines(try written(channel)).count == 2)
        _ = try? channel.finish()
    }

    @Test(arguments: [
        "NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ])
    func badBytesGetA400AndTheConnectionCloses(_ request: String) throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: request))
        let text = try written(channel)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("connection: close"))
        #expect(text.contains("\"ValidationError\"") || text.contains("ValidationError"))
        #expect(!channel.isActive)
        // Later bytes are ignored.
        _ = try? channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        #expect(try written(channel).isEmpty)
    }

    @Test func otherParseErrorsHaveTheirStatus() throws {
        for (request, status) in [
            ("GET / HTTP/3.0\r\n\r\n", "505"), ("POST / HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n", "501"),
            ("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTP1.maximumHeadSize), "431"),
        ] {
            let channel = try makeChannel()
            try channel.writeInbound(ByteBuffer(string: request))
            #expect(try written(channel).hasPrefix("HTTP/1.1 \(status) "))
            #expect(!channel.isActive)
        }
    }

    @Test func connectionCloseAndHTTP10() throws {
        var channel = try makeChannel()
        try channel.writeInbound(
            ByteBuffer(string: "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        )
        var text = try written(channel)
        #expect(statusLines(text).count == 1)
        #expect(text.contains("connection: close\r\n"))
        #expect(!channel.isActive)

        channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
        text = try written(channel)
        #expect(text.hasPrefix("HTTP/1.0 404 Not Found\r\n"))
        #expect(!channel.isActive)
    }

    @Test func aHEADResponseHasNoBodyAndTheNextRequestIsFramedRight() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n"))
        let text = try written(channel)
        let first = try #require(text.range(of: "\r\n\r\n"))
        #expect(text[first.upperBound...].hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(statusLines(text).count == 2)
        _ = try? channel.finish()
    }

    @Test func expectContinueGetsAnInterimResponse() throws {
        let channel = try makeChannel()
        try channel.writeInbound(
            ByteBuffer(string: "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        )
        #expect(try written(channel) == "HTTP/1.1 100 Continue\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "ok"))
        #expect(statusLines(try written(channel)) == ["HTTP/1.1 404 Not Found"])
        _ = try? channel.finish()
    }

    @Test func aBodyOverTheLimitIsReadAndDropped() throws {
        let channel = try makeChannel()
        let body = String(repeating: "b", count: 5000)
        try channel.writeInbound(
            ByteBuffer(string: "POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n\(body)GET /y HTTP/1.1\r\n\r\n")
        )
        #expect(statusLines(try written(channel)).count == 2)
        #expect(channel.isActive)
        _ = try? channel.finish()
    }
}

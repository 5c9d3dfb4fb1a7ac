import Foundation
import NIOCore
import NIOPosix
import StraitAuth
import StraitCore
import Synchronization
import Testing

@testable import StraitDataPlane

/// Polling before an event loop sleeps: the loop's selector is found, and a poll ends at the first event of any
/// channel on the loop or after its window.
@Suite struct BusyPollTests {
    /// A connected pair on loopback: the accepted side registered on `loop`, the connecting side on `other`.
    private func pair(
        loop: any EventLoop,
        other: any EventLoop
    ) async throws -> (server: any Channel, accepted: any Channel, client: any Channel) {
        let accepted = loop.makePromise(of: (any Channel).self)
        let server = try await ServerBootstrap(group: loop)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: other).connect(to: server.localAddress!).get()
        return (server, try await accepted.futureResult.get(), client)
    }

    @Test func findsTheSelectorOfEachLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let first = try await BusyPoll.findSelector(of: loops[0]).get()
        let second = try await BusyPoll.findSelector(of: loops[1]).get()
        #expect(first != nil)
        #expect(second != nil)
        #expect(first != second)
        try await group.shutdownGracefully()
    }

    /// Polls `selector` with a fresh poll of `window` (its calls counted among `[own, other]`), timed.
    private static func timedPoll(
        _ selector: CInt,
        window: TimeAmount,
        other: LoopCalls = LoopCalls(),
        whileInFlight limit: Int = .max
    ) -> (ready: Bool, took: TimeAmount) {
        let own = LoopCalls()
        let poll = BusyPoll(window: window, own: own, all: [own, other])
        poll.selector = selector
        let start = NIODeadline.now()
        let ready = poll.poll(whileInFlight: limit)
        return (ready, NIODeadline.now() - start)
    }

    /// Bytes for a channel on the loop end a poll at once: when they came while the loop was busy (still unread
    /// when it polls), and when they come while it polls.
    @Test(arguments: [true, false]) func aPollEndsWhenAChannelOnItsLoopCanBeRead(busyWhenBytesCome: Bool) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let (server, accepted, client) = try await pair(loop: loop, other: clientGroup.next())
        let selector = try #require(try await BusyPoll.findSelector(of: loop).get())
        try await Task.sleep(for: .milliseconds(50))
        // Set on the loop, read here without the loop (a future's callback would wait for the busy loop).
        let started = LoopCalls()
        let polled = loop.submit {
            started.count.store(1, ordering: .relaxed)
            if busyWhenBytesCome { usleep(200_000) }
            return Self.timedPoll(selector, window: .seconds(5))
        }
        while started.count.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        // Bytes that come now wait in the socket: the loop reads nothing until the task ends.
        if !busyWhenBytesCome { try await Task.sleep(for: .milliseconds(20)) }
        try await client.writeAndFlush(ByteBuffer(string: "ping")).get()
        let (ready, took) = try await polled.get()
        #expect(ready)
        #expect(took < .seconds(4))
        try? await client.close()
        try? await accepted.close()
        try await server.close()
        try await clientGroup.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    @Test func aPollWithNothingToReadEndsAfterItsWindow() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let selector = try #require(try await BusyPoll.findSelector(of: loop).get())
        let (ready, took) = try await loop.submit { Self.timedPoll(selector, window: .milliseconds(20)) }.get()
        #expect(!ready)
        #expect(took >= .milliseconds(20))
        try await group.shutdownGracefully()
    }

    /// Runs `body` on a loop whose selector is known, with a poll of `window` that counts its exchanges in `own`
    /// among `[own, other]`.
    private func onLoop<T: Sendable>(
        window: TimeAmount = .microseconds(100),
        _ body: @escaping @Sendable (BusyPoll, LoopCalls, any EventLoop) -> T
    ) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let selector = try #require(try await BusyPoll.findSelector(of: loop).get())
        let result = try await loop.submit {
            let own = LoopCalls()
            let other = LoopCalls()
            let poll = BusyPoll(window: window, own: own, all: [own, other])
            poll.selector = selector
            return body(poll, other, loop)
        }.get()
        try await group.shutdownGracefully()
        return result
    }

    /// Runs `count` exchanges one after another, each asking for a poll once its request is out (as the pool does);
    /// true if one was queued.
    private static func exchanges(_ count: Int, _ poll: BusyPoll, on loop: any EventLoop) -> Bool {
        var queued = false
        for _ in 0..<count {
            poll.exchangeStarted()
            poll.pollBeforeSleeping(on: loop, whileInFlight: 1)
            queued = queued || poll.isPollQueued
            poll.exchangeEnded()
        }
        return queued
    }

    @Test func pollsOnlyOnceCallsHaveComeOneAtATimeAndForTheCallerOnlyWithNoneInFlight() async throws {
        let seen = try await onLoop { poll, _, loop in
            let early = Self.exchanges(BusyPoll.aloneBeforePolling - 1, poll, on: loop)
            poll.exchangeStarted()
            poll.pollBeforeSleeping(on: loop, whileInFlight: 0)  // for a caller's next request: not with a call out
            let forCallerWhileInFlight = poll.isPollQueued
            poll.pollBeforeSleeping(on: loop, whileInFlight: 1)  // for this call's answer
            let forAnswer = poll.isPollQueued
            poll.exchangeEnded()
            return (early, forCallerWhileInFlight, forAnswer, poll.inFlight(atMost: 0))
        }
        #expect(!seen.0)
        #expect(!seen.1)
        #expect(seen.2)
        #expect(seen.3)
    }

    @Test func anotherLoopsCallInFlightStopsPolling() async throws {
        let (queued, withinOne) = try await onLoop { poll, other, loop in
            other.count.add(1, ordering: .relaxed)
            return (Self.exchanges(2 * BusyPoll.aloneBeforePolling, poll, on: loop), poll.inFlight(atMost: 1))
        }
        #expect(!queued)
        #expect(withinOne)  // the other loop's one call alone
    }

    @Test func aPollStopsWhenAnotherCallStarts() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let selector = try #require(try await BusyPoll.findSelector(of: loop).get())
        let other = LoopCalls()
        let polled = loop.submit { Self.timedPoll(selector, window: .seconds(5), other: other, whileInFlight: 0) }
        try await Task.sleep(for: .milliseconds(20))
        other.count.add(1, ordering: .relaxed)
        let (ready, took) = try await polled.get()
        #expect(!ready)
        #expect(took < .seconds(4))
        try await group.shutdownGracefully()
    }

    @Test(arguments: [true, false]) func pollsThatRunOutBackOff(runOut: Bool) async throws {
        let seen = try await onLoop { poll, _, loop in
            _ = Self.exchanges(BusyPoll.aloneBeforePolling - 1, poll, on: loop)  // one short of polling
            for _ in 0..<6 { poll.record(event: !runOut, took: .microseconds(100)) }
            let next = Self.exchanges(1, poll, on: loop)
            let backOff = runOut ? Self.exchanges(BusyPoll.backOffExchanges, poll, on: loop) : false
            let after = runOut ? Self.exchanges(BusyPoll.aloneBeforePolling + 1, poll, on: loop) : next
            return (next, backOff, after, poll.outcomes)
        }
        #expect(seen.0 == !runOut)  // six polls in a row that ran out stop polling at once
        #expect(!seen.1)
        #expect(seen.2)  // and it polls again after the back-off
        #expect(seen.3.events == (runOut ? 0 : 6) && seen.3.timeouts == (runOut ? 6 : 0))
        #expect(seen.3.nanoseconds == 600_000)
    }

    @Test func offOrWithoutASelectorItDoesNotPoll() async throws {
        let off = BusyPoll(window: .zero)
        off.selector = 0
        #expect(!off.isActive)
        #expect(!off.poll())
        let unknown = BusyPoll(window: .seconds(5))
        #expect(!unknown.isActive)
        let start = NIODeadline.now()
        #expect(!unknown.poll())
        #expect(NIODeadline.now() - start < .seconds(1))
    }

    @Test func aDataPlaneFindsEveryLoopsSelectorWhenPollingIsOn() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let verifier = SigV4Verifier(
            region: "us-east-1",
            service: "sagemaker",
            credentials: StaticCredentialProvider([])
        )
        let on = DataPlane(
            group: group,
            verifier: verifier,
            account: AccountContext(region: "us-east-1", accountID: "123456789012"),
            zones: .loopbackDefault(region: "us-east-1"),
            busyPoll: .microseconds(50),
            endpointStatus: { _ in nil }
        )
        var active = false
        for _ in 0..<100 where !active {
            active = await on.busyPollActive()
            if !active { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(active)
        let off = DataPlane(
            group: group,
            verifier: verifier,
            account: AccountContext(region: "us-east-1", accountID: "123456789012"),
            zones: .loopbackDefault(region: "us-east-1"),
            endpointStatus: { _ in nil }
        )
        #expect(await off.busyPollActive() == false)
        try await group.shutdownGracefully()
    }
}

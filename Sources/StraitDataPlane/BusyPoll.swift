import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Polling, for a short window, before an event loop goes to sleep, so that the next event of a fast exchange is
/// found running instead of by a wake-up.
///
/// At one call at a time, an invocation waits twice: for the instance's answer and for the caller's next request.
/// An event loop that sleeps in `epoll_wait` meanwhile is woken by the kernel when the bytes come, and on a virtual
/// machine whose idle vCPU halted that wake-up is an exit to the host on each side — tens of µs here
/// (BENCHMARKS.md). Polling the loop's own epoll instance (readable when any descriptor registered on the loop is
/// ready; NIO registers level-triggered) finds the event without sleeping. Because every descriptor of the loop is
/// in that epoll instance — other connections, the listener, the loop's wake-up eventfd and timer — the poll stops at
/// the first event of any of them: a spinning loop delays nothing that arrives through epoll. Work that NIO queues
/// without a wake-up (tasks scheduled on the loop from the loop itself, timers) waits at most one window.
///
/// It costs CPU: a loop that polls burns its window (or until the event) instead of sleeping. The callers poll only
/// when the exchange they wait for was recently quicker than the window, so a slow model or a caller that pauses
/// between requests turns it off by itself, and an idle server never polls.
///
/// Confined to one event loop. NIO does not expose its selector's descriptor; ``findSelector(of:)`` finds it once,
/// from `/proc/self/fdinfo` (Linux): the epoll instance that lists a pipe just registered on the loop.
final class BusyPoll {
    /// The longest a loop polls before it sleeps; zero turns polling off.
    let window: TimeAmount
    /// The loop's epoll descriptor, once found; -1 before, or if it was not found.
    var selector: CInt = -1
    /// This loop's exchanges in flight, and every loop's (this one's among them).
    private let own: LoopCalls
    private let all: [LoopCalls]
    /// While a poll is queued on the loop and has not run yet: how many exchanges may be in flight when it runs.
    private var queued: Int?
    /// Queued on the loop by ``pollBeforeSleeping(on:whileInFlight:)``; made once, so queuing allocates nothing.
    private var task: (() -> Void)?

    /// - Parameters:
    ///   - own: this loop's count of exchanges in flight.
    ///   - all: every loop's, `own` among them (just `own` when nil).
    init(window: TimeAmount, own: LoopCalls = LoopCalls(), all: [LoopCalls]? = nil) {
        self.window = window > .zero ? window : .zero
        self.own = own
        self.all = all ?? [own]
    }

    /// Whether polling is on and the loop's epoll descriptor known.
    var isActive: Bool { selector >= 0 && window > .zero }

    /// Whether a poll is queued and has not run yet.
    var isPollQueued: Bool { queued != nil }

    /// Exchanges started on this loop in a row while no other was in flight on any loop.
    private var alone = 0
    /// How many such exchanges in a row make the traffic "one call at a time", where polling pays.
    static let aloneBeforePolling = 32

    /// Counts an exchange with an instance that starts on this loop (only while polling is configured).
    func exchangeStarted() {
        guard window > .zero else { return }
        own.count.add(1, ordering: .relaxed)
        alone = inFlight(atMost: 1) ? alone &+ 1 : 0
    }

    /// Counts one that ended.
    func exchangeEnded() {
        if window > .zero { own.count.subtract(1, ordering: .relaxed) }
    }

    /// Whether at most `limit` exchanges are in flight over all loops. Polling is for calls that come one at a
    /// time: with more in flight, the instances and the callers need the CPUs that a polling loop would hold, and
    /// measured at 2 and 4 calls at a time on two cores, polling made both the hop and its tail longer.
    func inFlight(atMost limit: Int) -> Bool {
        var total = 0
        for calls in all {
            total += calls.count.load(ordering: .relaxed)
            if total > limit { return false }
        }
        return true
    }

    /// Polls once the loop has handled what it is handling now — as a task, which NIO runs after the events of its
    /// current wake-up and before it sleeps again — if at most `limit` exchanges are in flight then.
    func pollBeforeSleeping(on eventLoop: any EventLoop, whileInFlight limit: Int) {
        guard isActive, queued == nil, alone >= Self.aloneBeforePolling, inFlight(atMost: limit) else { return }
        queued = limit
        if task == nil {
            task = { [weak self] in
                guard let self, let limit = self.queued else { return }
                self.queued = nil
                self.poll(whileInFlight: limit)
            }
        }
        eventLoop.assumeIsolatedUnsafeUnchecked().execute(task!)
    }

    /// Polls the loop's epoll descriptor without sleeping until something on the loop is ready or ``window`` has
    /// passed; true if something became ready.
    @discardableResult
    func poll(whileInFlight limit: Int = .max) -> Bool {
        guard isActive else { return false }
        #if canImport(Glibc)
        var entry = pollfd(fd: selector, events: Int16(POLLIN), revents: 0)
        let end = NIODeadline.now() + window
        repeat {
            let ready = Glibc.poll(&entry, 1, 0)
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { return false }
        } while NIODeadline.now() < end && inFlight(atMost: limit)
        #endif
        return false
    }

    /// The epoll descriptor of `eventLoop`'s selector, found by registering a pipe's read end on the loop and
    /// looking for the epoll instance whose `/proc/self/fdinfo` lists it; nil where that cannot be told (not Linux,
    /// no `/proc`). The future completes on `eventLoop`.
    static func findSelector(of eventLoop: any EventLoop) -> EventLoopFuture<CInt?> {
        #if canImport(Glibc)
        var ends: [CInt] = [-1, -1]
        guard pipe(&ends) == 0 else { return eventLoop.makeSucceededFuture(nil) }
        let (input, output) = (ends[0], ends[1])
        _ = fcntl(input, F_SETFD, FD_CLOEXEC)
        _ = fcntl(output, F_SETFD, FD_CLOEXEC)
        return NIOPipeBootstrap(group: eventLoop)
            .channelOption(.autoRead, value: false)
            .takingOwnershipOfDescriptor(input: input)
            .flatMap { channel in
                let found = epollListing(input)
                return channel.close().map { found }.recover { _ in found }  // NIO closes `input` with the channel
            }
            .recover { _ in
                _ = Glibc.close(input)  // not registered: still ours
                return nil
            }
            .always { _ in _ = Glibc.close(output) }
        #else
        return eventLoop.makeSucceededFuture(nil)
        #endif
    }

    #if canImport(Glibc)
    /// The epoll descriptor of this process whose registered descriptors include `target`, if one does.
    static func epollListing(_ target: CInt) -> CInt? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        let wanted = Array("tfd: \(target) ".utf8)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let descriptor = CInt(name), isEpoll(descriptor),
                let info = readSmallFile("/proc/self/fdinfo/\(descriptor)")
            else { continue }
            // Lines look like `tfd:        7 events:       19 data: ...`: squeeze the spaces, then look for the field.
            var squeezed: [UInt8] = []
            squeezed.reserveCapacity(info.count)
            for byte in info where !(byte == 0x20 && squeezed.last == 0x20) { squeezed.append(byte) }
            for line in squeezed.split(separator: 0x0A) where line.starts(with: wanted) { return descriptor }
        }
        return nil
    }

    private static func isEpoll(_ descriptor: CInt) -> Bool {
        var target = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/self/fd/\(descriptor)", &target, target.count - 1)
        guard length > 0 else { return false }
        return String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            == "anon_inode:[eventpoll]"
    }

    private static func readSmallFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { _ = Glibc.close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = read(descriptor, &chunk, chunk.count)
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
    #endif
}

/// How many exchanges with instances are in flight on one event loop; written by that loop, read by all.
final class LoopCalls: Sendable {
    let count = Atomic<Int>(0)

    init() {}
}

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
/// ready; NIO registers level-triggered) finds the event without sleeping, and the first event of any descriptor
/// on the loop — other connections, the listener, an armed timer — ends the poll at once.
///
/// What does not end it: tasks handed to the loop from other threads while it is in the middle of a turn (NIO
/// writes its wake-up eventfd only when the loop may be asleep, and a poll runs as a task inside a turn) — a
/// connection accepted on another loop, a routing-table publish, a metrics scrape — and timers armed meanwhile:
/// these wait at most one window. The control plane's answers also come back that way, so a request handed to it
/// counts as in flight and no loop polls while one is out.
///
/// Between two looks it yields the CPU (`sched_yield`): a task woken onto the loop's CPU — the instance it waits
/// for, the caller — runs at once instead of after the window.
///
/// It costs CPU: a loop that polls burns its window (or until the event) instead of sleeping. A loop polls only
/// while calls come one at a time (``aloneBeforePolling``), for a wait of a kind that last took no longer than the
/// window on that connection (a new connection has no history and may poll), and stops polling for a while when
/// most recent polls ran out (``backOffExchanges``); an idle server never polls.
///
/// Confined to one event loop. NIO does not expose its selector's descriptor; ``findSelector(of:)`` finds it once,
/// from `/proc/self/fdinfo` (Linux): the epoll instance that lists a socket just registered on the loop.
final class BusyPoll {
    /// The longest a loop polls before it sleeps; zero turns polling off.
    let window: TimeAmount
    /// The loop's epoll descriptor, once found; -1 before, or if it was not found.
    var selector: CInt = -1
    /// This loop's exchanges in flight (calls at instances, requests at the control plane), and every loop's.
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
        self.window = max(window, .zero)
        self.own = own
        self.all = all ?? [own]
    }

    /// Whether polling is on and the loop's epoll descriptor known.
    var isActive: Bool { selector >= 0 && window > .zero }

    /// Whether a poll is queued and has not run yet.
    var isPollQueued: Bool { queued != nil }

    /// Exchanges started on this loop in a row while no other was in flight on any loop (negative while polling
    /// backs off).
    private var alone = 0
    /// How many such exchanges in a row make the traffic "one call at a time", where polling pays.
    static let aloneBeforePolling = 32
    /// The share of recent polls that ended without an event, in 1/1024 (a moving average over about 8 polls).
    private var missRate = 0
    /// Exchanges without polling after most recent polls ended without an event: the waits are longer than the
    /// window (a slow instance or caller), and a poll that times out only costs CPU — measured here, even makes
    /// the wait longer (the loop holds a CPU that the instance or the client may want).
    static let backOffExchanges = 1024
    /// What the loop's polls did, for `/metrics`.
    private(set) var outcomes = PollOutcomes()

    /// Counts an exchange that starts on this loop — a call sent to an instance, or a request handed to the control
    /// plane — (only while polling is configured).
    func exchangeStarted() {
        guard window > .zero else { return }
        own.count.add(1, ordering: .relaxed)
        alone = inFlight(atMost: 1) ? alone &+ 1 : min(alone, 0)
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
                let start = NIODeadline.now()
                let event = self.poll(whileInFlight: limit)
                self.record(event: event, took: NIODeadline.now() - start)
            }
        }
        eventLoop.assumeIsolatedUnsafeUnchecked().execute(task!)
    }

    /// Counts a poll's outcome, and backs off when most recent polls ended without an event.
    func record(event: Bool, took: TimeAmount) {
        if event { outcomes.events &+= 1 } else { outcomes.timeouts &+= 1 }
        outcomes.nanoseconds &+= UInt64(max(0, took.nanoseconds))
        missRate += (event ? 0 : 128) - missRate / 8
        if missRate > 512 {
            alone = -Self.backOffExchanges
            missRate = 0
        }
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
            // A task the kernel woke onto this CPU (the instance this loop waits for, say) runs now rather than
            // after the window: with boto3 calling one at a time, a third of the polls ran out without this.
            sched_yield()
        } while NIODeadline.now() < end && inFlight(atMost: limit)
        #endif
        return false
    }

    /// The epoll descriptor of `eventLoop`'s selector, found by registering one end of a socket pair on the loop
    /// and looking for the epoll instance whose `/proc/self/fdinfo` lists it (its number and inode); nil where that
    /// cannot be told (not Linux, no `/proc`, not exactly one such instance). The future completes on `eventLoop`.
    static func findSelector(of eventLoop: any EventLoop) -> EventLoopFuture<CInt?> {
        #if canImport(Glibc)
        var ends: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            return eventLoop.makeSucceededFuture(nil)
        }
        let (input, output) = (ends[0], ends[1])
        var status = stat()
        let inode = fstat(input, &status) == 0 ? UInt64(status.st_ino) : nil
        return NIOPipeBootstrap(group: eventLoop)
            .channelOption(.autoRead, value: false)
            .takingOwnershipOfDescriptor(input: input)
            .flatMap { channel in
                let found = inode.flatMap { epollListing(input, inode: $0) }
                return channel.close().map { found }.recover { _ in found }  // NIO closes `input` with the channel
            }
            // A failed registration may or may not have closed `input` (NIO closes it once its channel exists):
            // left open rather than risk closing a descriptor someone else has opened since.
            .recover { _ in nil }
            .always { _ in _ = Glibc.close(output) }
        #else
        return eventLoop.makeSucceededFuture(nil)
        #endif
    }

    #if canImport(Glibc)
    /// The one epoll descriptor of this process that lists `target` with inode `inode`, if exactly one does (an
    /// entry can outlive its descriptor's number while another process or a duplicate holds the file, so the
    /// number alone could name a stale entry elsewhere).
    static func epollListing(_ target: CInt, inode: UInt64) -> CInt? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        let wanted = Array("tfd: \(target) ".utf8)
        let wantedInode = Array(" ino:\(String(inode, radix: 16)) ".utf8)
        var found: [CInt] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let descriptor = CInt(name), isEpoll(descriptor),
                let info = readSmallFile("/proc/self/fdinfo/\(descriptor)")
            else { continue }
            // Lines look like `tfd:        7 events:       19 data:                7  pos:0 ino:4955f5 sdev:f`:
            // squeeze the spaces, then look for the fields.
            var squeezed: [UInt8] = []
            squeezed.reserveCapacity(info.count)
            for byte in info where !(byte == 0x20 && squeezed.last == 0x20) { squeezed.append(byte) }
            for line in squeezed.split(separator: 0x0A) where line.starts(with: wanted) {
                if line.firstRange(of: wantedInode) != nil { found.append(descriptor) }
            }
        }
        return found.count == 1 ? found[0] : nil
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

/// What one loop's polls did: how many ended with an event and how many at the end of the window (or because
/// another exchange started), and the time spent polling.
struct PollOutcomes: Sendable {
    var events: UInt64 = 0
    var timeouts: UInt64 = 0
    var nanoseconds: UInt64 = 0

    mutating func merge(_ other: PollOutcomes) {
        events &+= other.events
        timeouts &+= other.timeouts
        nanoseconds &+= other.nanoseconds
    }
}

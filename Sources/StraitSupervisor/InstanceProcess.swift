import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One instance running as a child process: started with `serve` in a process group of its own, with default signal
/// dispositions and no blocked signals (as a container's entry point starts), its output in a log file; stopped with
/// SIGTERM to the whole group, then SIGKILL after a bound.
///
/// Spawned with `posix_spawn` and reaped by a thread of its own blocked in `waitpid`, rather than with Foundation's
/// `Process`: that one passes the spawning thread's signal mask on (Swift's worker threads block SIGTERM) and only
/// notices an exit when every descendant has closed a socket it hands down.
final class InstanceProcess: Sendable {
    let id: String
    let logPath: String
    let pid: pid_t
    private let pidFilePath: String
    private let exit = ExitState()

    /// Starts the process.
    /// - Throws: a message saying why it could not be started.
    init(
        id: String,
        executable: String,
        arguments: [String],
        environment: [String: String],
        logPath: String
    ) throws(InstanceStartFailure) {
        self.id = id
        self.logPath = logPath
        self.pidFilePath = OrphanReaper.pidFilePath(logPath: logPath)
        let directory = (logPath as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw InstanceStartFailure(
                reason: "Cannot create the log directory \(directory): \(error.localizedDescription)"
            )
        }
        let pid = try Self.spawn(
            executable: executable,
            arguments: arguments + ["serve"],
            environment: environment,
            logPath: logPath
        )
        self.pid = pid
        OrphanReaper.writePidFile(path: pidFilePath, pid: pid, startTime: OrphanReaper.startTime(of: pid))
        let (exit, pidFilePath) = (self.exit, self.pidFilePath)
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            // Reaped: the pid is free for reuse, so the file naming it must go.
            try? FileManager.default.removeItem(atPath: pidFilePath)
            exit.finish(status: status)
        }
        reaper.name = "strait-reap-\(pid)"
        reaper.start()
    }

    private static func spawn(
        executable: String,
        arguments: [String],
        environment: [String: String],
        logPath: String
    ) throws(InstanceStartFailure) -> pid_t {
        // O_APPEND: after ``boundLog(maxBytes:)`` empties the file, the process writes at its new end.
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else {
            throw InstanceStartFailure(
                reason: "Cannot create the instance log \(logPath): \(String(cString: strerror(errno)))."
            )
        }
        defer { close(log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)
        )
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        var result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        // ETXTBSY: another thread's child briefly holds a write descriptor of a just-written executable.
        var attempts = 0
        while result == ETXTBSY, attempts < 50 {
            usleep(10_000)
            attempts += 1
            result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        guard result == 0 else {
            throw InstanceStartFailure(reason: "Cannot start \(executable): \(String(cString: strerror(result))).")
        }
        return pid
    }

    /// How the process ended, or nil while it runs.
    var exitDescription: String? { exit.description }

    var isRunning: Bool { exit.description == nil }

    /// Runs `action` (on the reaping thread) once the process has ended; at once if it has.
    func onExit(_ action: @escaping @Sendable () -> Void) { exit.onExit(action) }

    /// Waits for the process to end for at most `limit`; true if it has ended. Not cut short by cancellation, so a
    /// stop during shutdown still gives the instance its grace period without spinning.
    func waitForExit(atMost limit: Duration) async -> Bool { await exit.wait(atMost: limit) }

    /// SIGTERM to the process group, then SIGKILL to it if the process is still there after `grace`; returns once it
    /// has ended (or, should even SIGKILL not end it, after a further bound).
    func stop(grace: Duration) async {
        defer { try? FileManager.default.removeItem(atPath: pidFilePath) }
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        if await waitForExit(atMost: grace) {
            kill(-pid, SIGKILL)  // what the entry point started and left behind
            return
        }
        kill(-pid, SIGKILL)
        _ = await waitForExit(atMost: .seconds(5))
    }

    /// Keeps the log under `maxBytes` (see ``LogFile/bound(_:maxBytes:)``).
    @discardableResult
    func boundLog(maxBytes: Int64) -> Bool { LogFile.bound(logPath, maxBytes: maxBytes) }

    /// The last lines of the instance's log, for failure reasons.
    func logTail(lines: Int = 5, maxBytes: Int = 600) -> String {
        LogFile.tail(logPath, lines: lines, maxBytes: maxBytes)
    }
}

/// Resumes a continuation once, whichever of several events comes first.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>

    init(_ continuation: CheckedContinuation<Bool, Never>) { self.continuation = Mutex(continuation) }

    func resume(_ value: Bool) {
        continuation.withLock { stored in
            stored?.resume(returning: value)
            stored = nil
        }
    }
}

/// How a process (or container) ended, and what waits for it to end.
final class ExitState: Sendable {
    private struct State {
        var description: String?
        var waiters: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    /// "exited with status N", "was killed by signal N", or nil while it runs.
    var description: String? { state.withLock { $0.description } }

    /// A `waitpid` status.
    func finish(status: Int32) {
        let signal = status & 0x7F
        finish(
            description: signal != 0 ? "was killed by signal \(signal)" : "exited with status \((status >> 8) & 0xFF)"
        )
    }

    func finish(description: String) {
        let waiters = state.withLock { state -> [@Sendable () -> Void] in
            guard state.description == nil else { return [] }
            state.description = description
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter() }
    }

    /// Waits for the end for at most `limit`; true if it has ended. Not cut short by cancellation, so a stop during
    /// shutdown still gives the instance its grace period without spinning.
    func wait(atMost limit: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            // Detached: a cancelled caller must still wait out the bound, not spin. Cancelled once the process ends,
            // so no timer outlives the wait.
            let timer = Task.detached {
                try? await Task.sleep(for: limit)
                once.resume(false)
            }
            onExit {
                once.resume(true)
                timer.cancel()
            }
        }
    }

    /// Runs `action` once the process has ended (at once if it has).
    func onExit(_ action: @escaping @Sendable () -> Void) {
        let done = state.withLock { state in
            if state.description != nil { return true }
            state.waiters.append(action)
            return false
        }
        if done { action() }
    }
}

struct InstanceStartFailure: Error {
    let reason: String
}

/// An instance's log file: what the process writes to it, or what a container's log stream is copied into.
enum LogFile {
    /// Keeps the log under `maxBytes`: once past it, the log is copied to `<log>.1` (replacing the previous copy)
    /// and emptied; writers use O_APPEND, so they carry on at the start of the emptied file. Returns whether it
    /// rotated.
    @discardableResult
    static func bound(_ logPath: String, maxBytes: Int64) -> Bool {
        var status = stat()
        guard stat(logPath, &status) == 0, Int64(status.st_size) > maxBytes else { return false }
        let previous = logPath + ".1"
        unlink(previous)
        try? FileManager.default.copyItem(atPath: logPath, toPath: previous)
        truncate(logPath, 0)
        return true
    }

    /// The last lines of the log, joined with " | ", for failure reasons.
    static func tail(_ logPath: String, lines: Int = 5, maxBytes: Int = 600) -> String {
        guard let handle = FileHandle(forReadingAtPath: logPath) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > UInt64(maxBytes) ? size - UInt64(maxBytes) : 0
        try? handle.seek(toOffset: start)
        let data = (try? handle.readToEnd()) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).suffix(lines).joined(separator: " | ")
    }
}

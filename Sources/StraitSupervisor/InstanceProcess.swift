import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One instance running as a child process: started with `serve`, its output in a log file, stopped with SIGTERM
/// then SIGKILL after a bound.
final class InstanceProcess: Sendable {
    let id: String
    let logPath: String
    private let process: Process
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
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
            let log = FileHandle(forWritingAtPath: logPath)
        else { throw InstanceStartFailure(reason: "Cannot create the instance log \(logPath).") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["serve"]
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        self.process = process
        process.terminationHandler = { [exit] process in
            exit.finish(status: process.terminationStatus, reason: process.terminationReason)
        }
        do { try process.run() } catch {
            try? log.close()
            throw InstanceStartFailure(reason: "Cannot start \(executable): \(error.localizedDescription)")
        }
        try? log.close()
        OrphanReaper.writePidFile(path: pidFilePath, pid: process.processIdentifier, executable: executable)
    }

    private let pidFilePath: String

    var pid: Int32 { process.processIdentifier }

    /// How the process ended, or nil while it runs.
    var exitDescription: String? {
        exit.result.map {
            $0.reason == .uncaughtSignal ? "was killed by signal \($0.status)" : "exited with status \($0.status)"
        }
    }

    var isRunning: Bool { exit.result == nil }

    /// Returns when the process has ended.
    func waitForExit() async { await exit.wait() }

    /// SIGTERM, then SIGKILL if the process is still there after `grace`; returns once it has ended.
    func stop(grace: Duration) async {
        defer { try? FileManager.default.removeItem(atPath: pidFilePath) }
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while isRunning, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if isRunning {
            kill(pid, SIGKILL)
            await waitForExit()
        }
    }

    /// The last lines of the instance's log, for failure reasons.
    func logTail(lines: Int = 5, maxBytes: Int = 600) -> String {
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

/// How a process ended, and who is waiting for it to end.
private final class ExitState: Sendable {
    private struct State {
        var result: (status: Int32, reason: Process.TerminationReason)?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    var result: (status: Int32, reason: Process.TerminationReason)? { state.withLock { $0.result } }

    func finish(status: Int32, reason: Process.TerminationReason) {
        let waiters = state.withLock { state in
            state.result = (status, reason)
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.result != nil { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

struct InstanceStartFailure: Error {
    let reason: String
}

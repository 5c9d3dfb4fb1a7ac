import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The processes this benchmark started (`strait serve`, nginx, the bare forwarder). Each is stopped by its owner
/// when a run ends; an interrupted run (SIGINT, SIGTERM) stops them here, so a benchmark cut short leaves no server
/// behind. A benchmark killed outright (SIGKILL) cannot: the forwarder notices its parent is gone, the others do not.
enum Children {
    private struct Child: @unchecked Sendable {  // Process is used from here only to terminate and wait
        let process: Process
        let cleanUp: @Sendable () -> Void
    }

    private static let running = Mutex<[ObjectIdentifier: Child]>([:])
    private static let interrupted = Mutex(false)
    /// Kept for the life of the process; set once, before any child starts.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Stops `process` (and runs `cleanUp`) if the benchmark is interrupted before ``finished(_:)``.
    static func started(_ process: Process, cleanUp: @escaping @Sendable () -> Void = {}) {
        let child = Child(process: process, cleanUp: cleanUp)
        running.withLock { $0[ObjectIdentifier(process)] = child }
    }

    /// Takes `process` back from the interrupt handler before its owner stops it. When the handler already has it
    /// (an interrupt is being handled), this waits for the handler to end the benchmark instead: two threads must
    /// not stop the same `Process`.
    static func finished(_ process: Process) {
        let owned = running.withLock { $0.removeValue(forKey: ObjectIdentifier(process)) } != nil
        guard owned || !interrupted.withLock({ $0 }) else {
            while true { sleep(1) }
        }
    }

    /// From here on, SIGINT and SIGTERM stop every running child, then end the benchmark with the signal's status —
    /// or with the error of the measurement the stopped server cut short, if that comes first (its owner's `stop`
    /// then does the same cleaning up).
    static func stopOnInterrupt() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                interrupted.withLock { $0 = true }
                let children = running.withLock { running in
                    defer { running.removeAll() }
                    return Array(running.values)
                }
                for child in children where child.process.isRunning { child.process.terminate() }
                for child in children {
                    child.process.waitUntilExit()
                    child.cleanUp()
                }
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }
}

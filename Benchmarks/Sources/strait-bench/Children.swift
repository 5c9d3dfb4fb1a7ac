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

        func stop() {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            cleanUp()
        }
    }

    private static let running = Mutex<[ObjectIdentifier: Child]>([:])
    private static let interrupted = Mutex(false)
    /// Kept for the life of the process; set once, before any child starts.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    /// Records a child just started; `cleanUp` runs once it has exited, whether its owner stops it or an interrupt
    /// does.
    static func started(_ process: Process, cleanUp: @escaping @Sendable () -> Void = {}) {
        let child = Child(process: process, cleanUp: cleanUp)
        running.withLock { $0[ObjectIdentifier(process)] = child }
    }

    /// Stops a child its owner is done with: terminates it, waits for it and runs its clean-up. When the interrupt
    /// handler already has it, this waits for the handler to end the benchmark instead: two threads must not stop
    /// the same `Process`.
    static func stop(_ process: Process) {
        guard let child = running.withLock({ $0.removeValue(forKey: ObjectIdentifier(process)) }) else {
            if interrupted.withLock({ $0 }) {
                while true { sleep(1) }
            }
            return
        }
        child.stop()
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
                for child in children { child.stop() }
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a data directory, held for the life of the server: a second `strait serve` on the same
/// directory stops before it touches the store or the instances of the one that runs.
public final class DataDirectoryLock: Sendable {
    private let descriptor: Int32
    public let path: String

    /// Takes the lock, writing this process's pid into the lock file.
    /// - Throws: `ConfigurationError` naming the process that holds it.
    public init(dataDirectory: String) throws(ConfigurationError) {
        path = (dataDirectory as NSString).appendingPathComponent("lock")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ConfigurationError("Cannot open \(path): \(String(cString: strerror(errno))).")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            close(descriptor)
            throw ConfigurationError(
                "Another strait serve (pid \(holder.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown")) is using the data directory \(dataDirectory). Stop it, or choose another --data-dir."
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}

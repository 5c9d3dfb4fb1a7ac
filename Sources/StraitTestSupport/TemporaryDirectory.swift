public import Foundation

/// A fresh, uniquely named directory under the system's temporary directory.
///
/// Prefer ``withTemporaryDirectory(_:)``, which removes the directory when its body returns or throws.
public struct TemporaryDirectory: Sendable {
    public let url: URL

    /// Creates the directory.
    public init(prefix: String = "strait-test") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    }

    /// The directory's path.
    public var path: String { url.path }

    /// The path of `name` inside the directory (the file need not exist).
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Removes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Runs `body` with a fresh temporary directory and removes the directory afterwards, whether or not `body` throws.
public func withTemporaryDirectory<T>(_ body: (TemporaryDirectory) throws -> T) throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    return try body(directory)
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Instance processes left behind when `strait serve` did not stop cleanly (killed, crashed, power loss).
///
/// Every instance has a pid file beside its log, `<data-dir>/instances/<endpoint>/<id>.pid`, holding its pid and
/// executable; a clean stop removes it. On the next start, before any deployment, each process a leftover pid file
/// names is stopped if it still runs that executable (a reused pid running something else is left alone).
public enum OrphanReaper {
    static func pidFilePath(logPath: String) -> String {
        (logPath as NSString).deletingPathExtension + ".pid"
    }

    static func writePidFile(path: String, pid: Int32, executable: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data("\(pid)\n\(executable)\n".utf8))
    }

    /// Stops every leftover instance process under `dataDirectory` and removes the pid files.
    /// - Returns: the pids that were stopped.
    @discardableResult
    public static func reap(dataDirectory: String) -> [Int32] {
        let root = (dataDirectory as NSString).appendingPathComponent("instances")
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var stopped: [Int32] = []
        for case let relative as String in enumerator where relative.hasSuffix(".pid") {
            let path = (root as NSString).appendingPathComponent(relative)
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let lines = text.split(separator: "\n").map(String.init)
            guard lines.count >= 2, let pid = Int32(lines[0]), pid > 1 else { continue }
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
            guard executable == lines[1] || executable == (lines[1] as NSString).resolvingSymlinksInPath else {
                continue
            }
            kill(pid, SIGTERM)
            var waited = 0
            while isAlive(pid), waited < 40 {
                usleep(50_000)
                waited += 1
            }
            if isAlive(pid) { kill(pid, SIGKILL) }
            stopped.append(pid)
        }
        return stopped
    }

    /// Whether the process exists and has not ended (a zombie, ended but not yet reaped by its new parent, has).
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        let state = stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
        return state != "Z" && state != "X"
    }
}

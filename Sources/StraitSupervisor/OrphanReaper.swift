import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Instance processes left behind when `strait serve` did not stop cleanly (killed, crashed, power loss).
///
/// Every instance has a pid file beside its log, `<data-dir>/instances/<endpoint>/<id>.pid`, holding its pid and
/// the process's start time (field 22 of `/proc/<pid>/stat`); a clean stop removes it. On the next start, before
/// any deployment, the process group of each leftover pid file is stopped if its pid still belongs to the same
/// process (same start time: a reused pid is left alone).
public enum OrphanReaper {
    static func pidFilePath(logPath: String) -> String {
        (logPath as NSString).deletingPathExtension + ".pid"
    }

    static func writePidFile(path: String, pid: pid_t, startTime: String?) {
        _ = FileManager.default.createFile(atPath: path, contents: Data("\(pid)\n\(startTime ?? "")\n".utf8))
    }

    /// The start time of a process in clock ticks since boot, or nil if there is no such process.
    static func startTime(of pid: pid_t) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command: state is field 3, start time field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    /// Stops every leftover instance process group under `dataDirectory` and removes the pid files.
    /// - Returns: the pids whose groups were stopped.
    @discardableResult
    public static func reap(dataDirectory: String) -> [Int32] {
        let root = (dataDirectory as NSString).appendingPathComponent("instances")
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var stopped: [pid_t] = []
        for case let relative as String in enumerator where relative.hasSuffix(".pid") {
            let path = (root as NSString).appendingPathComponent(relative)
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard lines.count >= 2, let pid = pid_t(lines[0]), pid > 1, !lines[1].isEmpty,
                startTime(of: pid) == lines[1], isAlive(pid)
            else { continue }
            kill(-pid, SIGTERM)
            var waited = 0
            while isAlive(pid), waited < 40 {
                usleep(50_000)
                waited += 1
            }
            kill(-pid, SIGKILL)
            stopped.append(pid)
        }
        return stopped
    }

    /// Whether the process exists and has not ended (a zombie, ended but not yet reaped by its new parent, has).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        let state = stat[stat.index(after: close)...].drop(while: { $0 == " " }).first
        return state != "Z" && state != "X"
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time of processes from `/proc/<pid>/stat` (user and system, in seconds), for CPU per call: the gap between
/// two servers' latencies is mostly the CPU each spends per call, and this VM's timing noise hides what CPU time shows.
enum ProcessCPU {
    static func times(_ pids: [Int32]) -> (user: Double, system: Double) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var user = 0.0
        var system = 0.0
        for pid in pids {
            guard let fields = statFields(pid), fields.count > 12, let utime = Double(fields[11]),
                let stime = Double(fields[12])
            else { continue }
            user += utime / ticks
            system += stime / ticks
        }
        return (user, system)
    }

    /// `pid` and its direct children (nginx's master and its workers).
    static func withChildren(_ pid: Int32) -> [Int32] {
        var pids = [pid]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = Int32(entry), let fields = statFields(child), fields.count > 1, fields[1] == String(pid)
            else { continue }
            pids.append(child)
        }
        return pids
    }

    /// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces): state, ppid, …; utime and
    /// stime are the 12th and 13th of these. (`OrphanReaper` reads the same file the same way; it is not in a
    /// product this package can import.)
    private static func statFields(_ pid: Int32) -> [String]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ").map(String.init)
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// nginx as a reverse proxy in front of the same instance, started for the benchmark: the reference hop the issue's
/// target names ("at or below nginx's"), measured by the same client in the same rounds. Kept-alive upstream
/// connections, no access log, one worker per core — the configuration `Benchmarks/peers` uses for its nginx hop.
final class NginxProxy {
    let process: Process
    let directory: String
    let port: Int

    private init(process: Process, directory: String, port: Int) {
        self.process = process
        self.directory = directory
        self.port = port
    }

    /// The nginx binary to use: `path` if given, else the first `nginx` on PATH or in /usr/sbin; nil if none.
    static func binary(_ path: String?) -> String? {
        if let path { return path == "none" ? nil : path }
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for folder in folders + ["/usr/sbin", "/usr/local/sbin"] where access(folder + "/nginx", X_OK) == 0 {
            return folder + "/nginx"
        }
        return nil
    }

    static func start(binary: String, upstream: (host: String, port: Int)) throws -> NginxProxy {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "strait-bench-nginx-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = try freePort()
        let config = """
            daemon off;
            worker_processes auto;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                client_body_buffer_size 1m;
                keepalive_requests 1000000;
                keepalive_timeout 75s;
                upstream instance { server \(upstream.host):\(upstream.port); keepalive 128; }
                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        proxy_pass http://instance;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                    }
                }
            }

            """
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-p", directory, "-c", directory + "/nginx.conf", "-e", directory + "/error.log"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let proxy = NginxProxy(process: process, directory: directory, port: port)
        let deadline = Date().addingTimeInterval(10)
        while !canConnect(port: port) {
            guard process.isRunning, Date() < deadline else {
                let log = (try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""
                proxy.stop()
                throw BenchError("nginx did not start:\n\(log)")
            }
            usleep(20_000)
        }
        return proxy
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A loopback port nothing listens on now (bound to port 0, then released). The twin of
    /// `ProcessReconciler.freePort(on:)`, which this package cannot import (StraitSupervisor is not a product).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket() failed") }
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw BenchError("no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

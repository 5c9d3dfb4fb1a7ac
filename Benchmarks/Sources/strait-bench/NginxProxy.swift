import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// nginx as a reverse proxy in front of the same instance, started for the benchmark: the reference hop the issue's
/// target names ("at or below nginx's"), measured by the same client in the same rounds. Kept-alive upstream
/// connections, no access log, one worker per core — the configuration `Benchmarks/peers` uses for its nginx hop.
final class NginxProxy {
    let process: Process
    let port: Int

    private init(process: Process, port: Int) {
        self.process = process
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
        let port = try Loopback.freePort()
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
        Children.started(process) { try? FileManager.default.removeItem(atPath: directory) }
        let proxy = NginxProxy(process: process, port: port)
        guard Loopback.waitUntilListening(port: port, process: process) else {
            let log = (try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""
            proxy.stop()
            throw BenchError("nginx did not start:\n\(log)")
        }
        return proxy
    }

    /// Stops nginx and removes its directory (the clean-up it was started with).
    func stop() { Children.stop(process) }
}

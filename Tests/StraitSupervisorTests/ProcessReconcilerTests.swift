import Foundation
import Logging
import NIOCore
import NIOPosix
import StraitCore
import StraitTestSupport
import Synchronization
import Testing

@testable import StraitSupervisor

#if canImport(Glibc)
import Glibc
#endif

/// A contract-speaking test image: a Python program that answers `GET /ping` and echoes `POST /invocations`,
/// on `$STRAIT_BIND_ADDRESS:$SAGEMAKER_BIND_TO_PORT`, started as `<image> serve`.
private let contractServer = #"""
    #!/usr/bin/env python3
    import os, sys, http.server
    assert sys.argv[1:] == ["serve"], sys.argv
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ping" else 404); self.send_header("Content-Length", "0"); self.end_headers()
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        def log_message(self, *args): pass
    print("model server starting", flush=True)
    http.server.ThreadingHTTPServer((os.environ["STRAIT_BIND_ADDRESS"], int(os.environ["SAGEMAKER_BIND_TO_PORT"])), H).serve_forever()
    """#

/// Writes an executable script. The descriptor is close-on-exec: a child spawned meanwhile by another test must not
/// inherit it, or exec of this file fails with ETXTBSY for as long as that child lives.
private func executable(_ directory: TemporaryDirectory, _ name: String, _ text: String) throws -> String {
    let path = directory.path(name)
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    guard descriptor >= 0 else { throw POSIXError(.EIO) }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
    guard written == bytes.count else { throw POSIXError(.EIO) }
    return path
}

private func variant(_ image: String, count: Int, startup: Int? = nil, subnets: [String] = []) -> VariantSpec {
    VariantSpec(
        name: "main",
        modelName: "m",
        image: image,
        instanceCount: count,
        weight: 1,
        subnetIDs: subnets,
        startupHealthCheckTimeoutSeconds: startup
    )
}

/// The routing tables a reconciler published, in order.
private final class PublishedTables: Sendable {
    private let state = Mutex<[RoutingTable]>([])
    func append(_ table: RoutingTable) { state.withLock { $0.append(table) } }
    var tables: [RoutingTable] { state.withLock { $0 } }
}

@Suite(.serialized, .timeLimit(.minutes(1)))
struct ProcessReconcilerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private func reconciler(
        _ directory: TemporaryDirectory,
        publish: @escaping @Sendable (RoutingTable) -> Void = { _ in }
    ) -> ProcessReconciler {
        ProcessReconciler(
            configuration: SupervisorConfiguration(
                dataDirectory: directory.path,
                workerExecutable: "/nonexistent/strait",
                zones: .loopbackDefault(region: "us-east-1"),
                stopGrace: .seconds(2)
            ),
            probe: HealthProbe(group: group, timeout: .milliseconds(500)),
            logger: Logger(label: "test"),
            publish: publish
        )
    }

    @Test func instancesSpreadOverZonesAnswerAndStop() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(directory, "serve", contractServer)
        let reconciler = reconciler(directory)
        let spec = DeploymentSpec(configName: "c", variants: [variant(image, count: 3)])
        let outcome = await reconciler.deploy(endpoint: "e", generation: 1, spec: spec)
        guard case .succeeded(let images) = outcome else {
            Issue.record("deployment failed: \(outcome)")
            return
        }
        #expect(images["main"]?.first?.resolvedImage == "file://" + image)
        let instances = await reconciler.instances(of: "e")
        #expect(instances.count == 3)
        #expect(Set(instances.map(\.zone)) == ["us-east-1a", "us-east-1b", "us-east-1c"])
        for instance in instances {
            #expect(IPv4CIDR("127.0.0.0/8")?.contains(instance.address) == true)
            #expect(await HealthProbe(group: group).ping(host: instance.address, port: instance.port) == 200)
        }
        // Scaling to 1 keeps one of the running instances and stops the others.
        var smaller = spec
        smaller.variants[0].instanceCount = 1
        #expect(await reconciler.deploy(endpoint: "e", generation: 2, spec: smaller) != .failed(reason: ""))
        let remaining = await reconciler.instances(of: "e")
        #expect(remaining.count == 1)
        #expect(instances.map(\.id).contains(remaining[0].id))
        await reconciler.tearDown(endpoint: "e")
        for instance in instances { #expect(!instance.process.isRunning) }
        #expect(await reconciler.instances(of: "e").isEmpty)
    }

    /// An instance whose process dies leaves the snapshot at once and is replaced in its zone; the reconciler's
    /// `run()` does the replacing.
    @Test func aDeadInstanceIsReplacedInItsZone() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(directory, "serve", contractServer)
        let published = PublishedTables()
        let reconciler = reconciler(directory, publish: { published.append($0) })
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await reconciler.run() }
            let spec = DeploymentSpec(configName: "c", variants: [variant(image, count: 2)])
            guard case .succeeded = await reconciler.deploy(endpoint: "e", generation: 1, spec: spec) else {
                Issue.record("deployment failed")
                group.cancelAll()
                return
            }
            let before = await reconciler.instances(of: "e")
            let victim = before[0]
            kill(victim.process.pid, SIGKILL)
            var after: [Instance] = []
            for _ in 0..<300 {
                after = await reconciler.instances(of: "e")
                if after.count == 2, !after.contains(where: { $0.id == victim.id }) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(after.count == 2)
            #expect(!after.contains { $0.id == victim.id })
            #expect(after.contains { $0.zone == victim.zone && $0.id != victim.id })
            // Some snapshot in between routed without the dead instance.
            #expect(
                published.tables.contains { table in
                    table.endpoint(named: "e")?.variants.first?.instances.count == 1
                }
            )
            await reconciler.tearDown(endpoint: "e")
            group.cancelAll()
        }
    }

    @Test func modelSubnetsChooseTheZones() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(directory, "serve", contractServer)
        let reconciler = reconciler(directory)
        let spec = DeploymentSpec(
            configName: "c",
            variants: [variant(image, count: 2, subnets: ["subnet-00000000000000002", "subnet-00000000000000003"])]
        )
        let outcome = await reconciler.deploy(endpoint: "e", generation: 1, spec: spec)
        #expect(outcome != .failed(reason: ""))
        let zones = await reconciler.instances(of: "e").map(\.zone).sorted()
        #expect(zones == ["us-east-1b", "us-east-1c"])
        await reconciler.tearDown(endpoint: "e")
    }

    @Test func aMissingImageFails() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let outcome = await reconciler(directory).deploy(
            endpoint: "e",
            generation: 1,
            spec: DeploymentSpec(configName: "c", variants: [variant("/nonexistent/model/serve", count: 1)])
        )
        guard case .failed(let reason) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(reason.contains("Requested image /nonexistent/model/serve not found"))
    }

    @Test func aProcessThatExitsFailsWithItsLog() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(directory, "serve", "#!/bin/sh\necho 'cannot load the model' >&2\nexit 3\n")
        let reconciler = reconciler(directory)
        let outcome = await reconciler.deploy(
            endpoint: "e",
            generation: 1,
            spec: DeploymentSpec(configName: "c", variants: [variant(image, count: 2)])
        )
        guard case .failed(let reason) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(reason.contains("exited with status 3"))
        #expect(reason.contains("cannot load the model"))
        #expect(await reconciler.instances(of: "e").isEmpty)
    }

    @Test func aServerThatNeverAnswersPingTimesOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(directory, "serve", "#!/bin/sh\necho 'loading forever'\nexec sleep 30\n")
        let reconciler = reconciler(directory)
        let outcome = await reconciler.deploy(
            endpoint: "e",
            generation: 1,
            spec: DeploymentSpec(configName: "c", variants: [variant(image, count: 1, startup: 1)])
        )
        guard case .failed(let reason) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(reason.contains("did not pass the ping health check within"))
        #expect(reason.contains("loading forever"))
    }

    @Test func aFailedUpdateKeepsTheOldFleet() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let good = try executable(directory, "serve", contractServer)
        let bad = try executable(directory, "bad", "#!/bin/sh\nexit 1\n")
        let reconciler = reconciler(directory)
        _ = await reconciler.deploy(
            endpoint: "e",
            generation: 1,
            spec: DeploymentSpec(configName: "c", variants: [variant(good, count: 1)])
        )
        let before = await reconciler.instances(of: "e")
        let outcome = await reconciler.deploy(
            endpoint: "e",
            generation: 2,
            spec: DeploymentSpec(configName: "c2", variants: [variant(bad, count: 1)])
        )
        #expect(outcome != .succeeded(images: [:]))
        let after = await reconciler.instances(of: "e")
        #expect(after.map(\.id) == before.map(\.id))
        #expect(after.allSatisfy { $0.process.isRunning })
        await reconciler.tearDown(endpoint: "e")
    }
}

@Suite struct ImageResolverTests {
    let resolver = ImageResolver(workerExecutable: "/opt/strait")

    @Test(arguments: ["strait/echo", "strait/echo:latest"])
    func builtInEcho(_ image: String) throws {
        let resolved = try resolver.resolve(image).get()
        #expect(resolved.executable == "/opt/strait")
        #expect(resolved.arguments == ["worker", "--runtime", "echo"])
    }

    @Test(arguments: [
        "strait/xgboost", "strait/xgboost:3.2", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.5-1",
        "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1",
    ])
    func builtInXGBoost(_ image: String) throws {
        let resolved = try resolver.resolve(image).get()
        #expect(resolved.executable == "/opt/strait")
        #expect(resolved.arguments == ["worker", "--runtime", "xgboost"])
        #expect(resolved.description == image)
    }

    @Test(arguments: ["no-such-registry.example/none:latest", "example.com/xgboost:1", "relative/path", "", "file://"])
    func unknownImagesFail(_ image: String) {
        guard case .failure(let failure) = resolver.resolve(image) else {
            Issue.record("\(image) resolved")
            return
        }
        #expect(failure.reason.contains("not found"))
    }

    @Test func imageTableFromConfigurationAndDataDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let serve = try executable(directory, "serve", "#!/bin/sh\n")
        let tableFile = directory.path("images.json")
        let resolver = ImageResolver(
            workerExecutable: "/opt/strait",
            table: ["my-model": directory.path, "xgb:2": "strait/xgboost", "broken": "/nonexistent"],
            tableFile: tableFile
        )
        #expect(try resolver.resolve("my-model:any-tag").get().executable == serve)
        #expect(try resolver.resolve("xgb:2").get().arguments == ["worker", "--runtime", "xgboost"])
        #expect(throws: ImageResolver.Failure.self) { try resolver.resolve("xgb:3").get() }
        guard case .failure(let broken) = resolver.resolve("broken") else {
            Issue.record("a table entry to a missing path resolved")
            return
        }
        #expect(broken.reason.contains("maps to /nonexistent in the image table"))
        // The data directory's file is read at every resolution and wins over the configuration.
        try #"{"images": {"xgb:2": "strait/echo", "later": "file://\#(serve)"}}"#.write(
            toFile: tableFile,
            atomically: true,
            encoding: .utf8
        )
        #expect(try resolver.resolve("xgb:2").get().arguments == ["worker", "--runtime", "echo"])
        #expect(try resolver.resolve("later").get().executable == serve)
        try "{not json".write(toFile: tableFile, atomically: true, encoding: .utf8)
        guard case .failure(let invalid) = resolver.resolve("later") else {
            Issue.record("an invalid image table was accepted")
            return
        }
        #expect(invalid.reason.contains("not valid JSON"))
    }

    @Test func directoriesAndFileURLs() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let serve = try executable(directory, "serve", "#!/bin/sh\n")
        #expect(try resolver.resolve(directory.path).get().executable == serve)
        #expect(try resolver.resolve("file://" + serve).get().executable == serve)
        let plain = directory.path("plain")
        try "data".write(toFile: plain, atomically: true, encoding: .utf8)
        guard case .failure(let failure) = resolver.resolve(plain) else {
            Issue.record("a non-executable file resolved")
            return
        }
        #expect(failure.reason.contains("is not an executable file"))
    }
}

/// Starts `image serve` as instance i-1 with a minimal PATH.
private func startProcess(_ image: String, logPath: String) throws -> InstanceProcess {
    try InstanceProcess(
        id: "i-1",
        executable: image,
        arguments: [],
        environment: ["PATH": "/usr/bin:/bin"],
        logPath: logPath
    )
}

@Suite(.timeLimit(.minutes(1)))
struct InstanceProcessTests {
    /// A `serve` that is a shell script starting the real server without `exec` (the usual nginx + gunicorn shape):
    /// stop must end the whole process group, and return.
    @Test func stopEndsTheWholeProcessGroup() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(directory, "serve", "#!/bin/sh\nsleep 30 &\necho started $!\nwait\n")
        let process = try startProcess(image, logPath: directory.path("i-1.log"))
        var child: Int32?
        for _ in 0..<100 where child == nil {
            child = process.logTail().split(separator: " ").last.flatMap { Int32($0) }
            if child == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let grandchild = try #require(child)
        await process.stop(grace: .seconds(5))
        #expect(!process.isRunning)
        // The grandchild got the signal too (it may linger a moment as a zombie of init).
        var gone = false
        for _ in 0..<100 where !gone {
            gone = !OrphanReaper.isAlive(grandchild)
            if !gone { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(gone)
    }

    /// The log is bounded: past the limit it moves to `.1` and the process goes on writing to the emptied file.
    @Test func logIsBoundedAndKeepsOnePreviousFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let line = String(repeating: "x", count: 100)
        let image = try executable(directory, "serve", "#!/bin/sh\nwhile true; do echo \(line); sleep 0.001; done\n")
        let logPath = directory.path("i-1.log")
        let process = try startProcess(image, logPath: logPath)
        var rotations = 0
        for _ in 0..<500 where rotations < 2 {
            if process.boundLog(maxBytes: 20_000) { rotations += 1 }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(rotations == 2)
        let previous = try #require(FileManager.default.attributesOfItem(atPath: logPath + ".1")[.size] as? Int)
        #expect(previous > 20_000)
        try await Task.sleep(for: .milliseconds(200))
        let current = try #require(FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int)
        // Written after the last rotation from the file's start (O_APPEND), not at the old offset with a hole.
        #expect(current > 0 && current < previous * 4)
        let head = try #require(FileManager.default.contents(atPath: logPath)).prefix(10)
        #expect(head.allSatisfy { $0 != 0 })
        await process.stop(grace: .seconds(1))
    }

    /// Instances start with SIGTERM deliverable (not blocked, not ignored), so they can shut down gracefully.
    @Test func sigtermReachesTheInstance() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try executable(
            directory,
            "serve",
            "#!/bin/sh\ntrap 'echo got TERM; exit 0' TERM\necho ready\nwhile true; do sleep 0.05; done\n"
        )
        let process = try startProcess(image, logPath: directory.path("i-1.log"))
        for _ in 0..<100 where !process.logTail().contains("ready") { try await Task.sleep(for: .milliseconds(20)) }
        let clock = ContinuousClock()
        let started = clock.now
        await process.stop(grace: .seconds(10))
        #expect(clock.now - started < .seconds(5))
        let log = process.logTail(lines: 10)
        // A blocked or ignored SIGTERM would leave the trap silent until SIGKILL after the grace period.
        #expect(log.contains("got TERM"))
    }
}

@Suite struct OrphanReaperTests {
    @Test func leftoverProcessesAreStoppedAndOthersLeftAlone() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let instances = directory.path("instances/e")
        try FileManager.default.createDirectory(atPath: instances, withIntermediateDirectories: true)
        let image = try executable(directory, "serve", "#!/bin/sh\nexec sleep 30\n")
        // An instance whose server is gone: its pid file stays behind, as after a crash.
        let orphan = try startProcess(image, logPath: instances + "/i-1.log")
        // A pid file whose pid now belongs to another process (this test) must not be touched.
        OrphanReaper.writePidFile(path: instances + "/i-2.pid", pid: getpid(), startTime: "1")
        let stopped = OrphanReaper.reap(dataDirectory: directory.path)
        #expect(stopped == [orphan.pid])
        #expect(await orphan.waitForExit(atMost: .seconds(5)))
        #expect(!FileManager.default.fileExists(atPath: instances + "/i-1.pid"))
        #expect(!FileManager.default.fileExists(atPath: instances + "/i-2.pid"))
    }
}

import Foundation
import Logging
import NIOCore
import NIOPosix
import StraitCore
import StraitTestSupport
import Testing

@testable import StraitSupervisor

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

private func executable(_ directory: TemporaryDirectory, _ name: String, _ text: String) throws -> String {
    let path = directory.path(name)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
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

@Suite(.serialized, .timeLimit(.minutes(1)))
struct ProcessReconcilerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private func reconciler(_ directory: TemporaryDirectory) -> ProcessReconciler {
        ProcessReconciler(
            configuration: SupervisorConfiguration(
                dataDirectory: directory.path,
                workerExecutable: "/nonexistent/strait",
                zones: .loopbackDefault(region: "us-east-1"),
                stopGrace: .seconds(2)
            ),
            probe: HealthProbe(group: group, timeout: .milliseconds(500)),
            logger: Logger(label: "test")
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

    @Test(arguments: ["no-such-registry.example/none:latest", "relative/path", "", "file://"])
    func unknownImagesFail(_ image: String) {
        guard case .failure(let failure) = resolver.resolve(image) else {
            Issue.record("\(image) resolved")
            return
        }
        #expect(failure.reason.contains("not found"))
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

@Suite struct OrphanReaperTests {
    @Test func leftoverProcessesAreStoppedAndOthersLeftAlone() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let instances = directory.path("instances/e")
        try FileManager.default.createDirectory(atPath: instances, withIntermediateDirectories: true)
        let orphan = Process()
        orphan.executableURL = URL(fileURLWithPath: "/bin/sleep")
        orphan.arguments = ["30"]
        try orphan.run()
        defer { if orphan.isRunning { orphan.terminate() } }
        let sleep = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(orphan.processIdentifier)/exe")
        OrphanReaper.writePidFile(path: instances + "/i-1.pid", pid: orphan.processIdentifier, executable: sleep)
        // A pid file whose pid now runs another program (this test process) must not be touched.
        OrphanReaper.writePidFile(path: instances + "/i-2.pid", pid: getpid(), executable: "/bin/something-else")
        let stopped = OrphanReaper.reap(dataDirectory: directory.path)
        #expect(stopped == [orphan.processIdentifier])
        orphan.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: instances + "/i-1.pid"))
        #expect(!FileManager.default.fileExists(atPath: instances + "/i-2.pid"))
    }
}

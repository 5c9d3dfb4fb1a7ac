import Foundation
import NIOCore
import NIOHTTP1
import StraitCore

#if canImport(Glibc)
import Glibc
#endif

/// What the reconciler needs of a running instance, whichever backend runs it.
protocol InstanceHandle: AnyObject, Sendable {
    /// The process id on this machine (a container's main process), for people and pid files.
    var pid: Int32 { get }
    var isRunning: Bool { get }
    /// How it ended ("exited with status 1", …), or nil while it runs.
    var exitDescription: String? { get }
    func onExit(_ action: @escaping @Sendable () -> Void)
    /// SIGTERM, then SIGKILL after `grace`; returns once it has ended and its resources are released.
    func stop(grace: Duration) async
    func logTail(lines: Int, maxBytes: Int) -> String
    @discardableResult func boundLog(maxBytes: Int64) -> Bool
}

extension InstanceHandle {
    func logTail() -> String { logTail(lines: 5, maxBytes: 600) }
}

extension InstanceProcess: InstanceHandle {}

/// The memory and CPUs a container gets, from its ml.* instance type.
public struct InstanceResources: Sendable, Equatable {
    public let memoryBytes: Int64
    public let nanoCPUs: Int64

    /// vCPUs and GiB of the common ml.* instance types.
    static let table: [String: (cpus: Int, gib: Int)] = [
        "ml.t2.medium": (2, 4), "ml.t2.large": (2, 8), "ml.t2.xlarge": (4, 16),
        "ml.m4.xlarge": (4, 16), "ml.m5.large": (2, 8), "ml.m5.xlarge": (4, 16), "ml.m5.2xlarge": (8, 32),
        "ml.m5.4xlarge": (16, 64), "ml.m6i.large": (2, 8), "ml.m6i.xlarge": (4, 16),
        "ml.c5.large": (2, 4), "ml.c5.xlarge": (4, 8), "ml.c5.2xlarge": (8, 16), "ml.c5.4xlarge": (16, 32),
        "ml.c6i.large": (2, 4), "ml.c6i.xlarge": (4, 8), "ml.r5.large": (2, 16), "ml.r5.xlarge": (4, 32),
        "ml.g4dn.xlarge": (4, 16), "ml.g5.xlarge": (4, 16), "ml.inf1.xlarge": (4, 8),
    ]

    /// The type's vCPUs and memory, scaled to this machine: at most all its cores and half its memory, so a
    /// laptop can run an endpoint of ml.m5.4xlarge instances (each then gets what the machine can give).
    public static func forInstanceType(_ type: String?) -> InstanceResources {
        let (cpus, gib) = type.flatMap { table[$0] } ?? (2, 8)
        let hostCPUs = ProcessInfo.processInfo.activeProcessorCount
        let hostMemory = Int64(ProcessInfo.processInfo.physicalMemory)
        let memory = min(Int64(gib) << 30, max(hostMemory / 2, 256 << 20))
        return InstanceResources(memoryBytes: memory, nanoCPUs: Int64(min(cpus, hostCPUs)) * 1_000_000_000)
    }
}

/// An instance run as a container through a Docker Engine API (dockerd or podman): created with the model directory
/// mounted read-only at `/opt/ml/model`, host networking, `Init` so SIGTERM reaches the server, the instance type's
/// limits and labels naming endpoint, variant and instance; its log stream is copied into the instance's log file.
final class ContainerInstance: InstanceHandle {
    let containerID: String
    let pid: Int32
    private let engine: DockerEngine
    private let logPath: String
    private let exit = ExitState()

    /// Labels Strait puts on its containers.
    static let endpointLabel = "strait.endpoint"
    static let variantLabel = "strait.variant"
    static let instanceLabel = "strait.instance"
    static let ownerLabel = "strait.data-dir"

    private init(containerID: String, pid: Int32, engine: DockerEngine, logPath: String) {
        self.containerID = containerID
        self.pid = pid
        self.engine = engine
        self.logPath = logPath
    }

    var isRunning: Bool { exit.description == nil }
    var exitDescription: String? { exit.description }
    func onExit(_ action: @escaping @Sendable () -> Void) { exit.onExit(action) }
    func logTail(lines: Int, maxBytes: Int) -> String { LogFile.tail(logPath, lines: lines, maxBytes: maxBytes) }
    @discardableResult func boundLog(maxBytes: Int64) -> Bool { LogFile.bound(logPath, maxBytes: maxBytes) }

    struct Spec: Sendable {
        var name: String
        var image: String
        var environment: [String: String]
        /// Mounted read-only at /opt/ml/model (empty when the model has no model data, as on SageMaker).
        var modelDirectory: String
        var labels: [String: String]
        var resources: InstanceResources
        var logPath: String
    }

    /// Pulls the image when the engine does not have it, then creates and starts the container.
    static func start(engine: DockerEngine, spec: Spec) async throws(InstanceStartFailure) -> ContainerInstance {
        do {
            try await ensureImage(engine: engine, image: spec.image)
            let binds: [JSONValue] = [.string("\(spec.modelDirectory):/opt/ml/model:ro")]
            var environment = spec.environment
            environment["SM_MODEL_DIR"] = "/opt/ml/model"
            let created = try await engine.expect(
                .POST,
                "/containers/create?name=\(DockerEngine.query(spec.name))",
                json: .object([
                    "Image": .string(spec.image),
                    "Cmd": .array([.string("serve")]),
                    "Env": .array(environment.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") }),
                    "Labels": .object(spec.labels.mapValues { .string($0) }),
                    "HostConfig": .object([
                        "NetworkMode": .string("host"),
                        "Binds": .array(binds),
                        "Init": .bool(true),
                        "Memory": .number(Double(spec.resources.memoryBytes)),
                        "NanoCpus": .number(Double(spec.resources.nanoCPUs)),
                    ]),
                ])
            )
            guard let id = created.json?["Id"]?.stringValue, isContainerID(id) else {
                await remove(engine: engine, container: spec.name)
                throw InstanceStartFailure(reason: "The Docker engine created no container: \(created.message)")
            }
            do {
                try await engine.expect(.POST, "/containers/\(id)/start")
                let inspected = try await engine.expect(.GET, "/containers/\(id)/json")
                let pid = Int32(clamping: inspected.json?["State"]?["Pid"]?.intValue ?? 0)
                let instance = ContainerInstance(containerID: id, pid: pid, engine: engine, logPath: spec.logPath)
                instance.follow()
                return instance
            } catch {
                await remove(engine: engine, container: id)
                throw error
            }
        } catch let failure as InstanceStartFailure {
            throw failure
        } catch {
            // A create whose answer was lost may still have made the container: it has our name.
            await remove(engine: engine, container: spec.name)
            throw InstanceStartFailure(reason: "Cannot start a container of \(spec.image): \(error)")
        }
    }

    /// Removes a container (by id or name), even from a cancelled task: cleanup must reach the engine.
    static func remove(engine: DockerEngine, container: String) async {
        await Task.detached {
            _ = try? await engine.request(.DELETE, "/containers/\(DockerEngine.query(container))?force=1&v=1")
        }.value
    }

    /// Engine-made ids are hex; anything else is not put into a request path.
    static func isContainerID(_ text: String) -> Bool {
        (12...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    private static func ensureImage(engine: DockerEngine, image: String) async throws {
        let found = try await engine.request(.GET, "/images/\(DockerEngine.query(image))/json")
        guard found.status == 404 else {
            guard found.status == 200 else { throw DockerEngine.Failure(status: found.status, message: found.message) }
            return
        }
        let (name, reference) = pullReference(image)
        let pulled = try await engine.request(
            .POST,
            "/images/create?fromImage=\(DockerEngine.query(name))&tag=\(DockerEngine.query(reference))",
            timeout: .minutes(30)
        )
        let error = pullError(pulled.body)
        if !(200..<300).contains(pulled.status) || error != nil {
            throw InstanceStartFailure(
                reason:
                    "Requested image \(image) not found: the Docker engine could not pull it: \(error ?? pulled.message)"
            )
        }
    }

    /// The error in a pull's answer: a stream of JSON lines ending in "\r\n", where a failure is a line with
    /// "error" (possibly after progress lines).
    static func pullError(_ body: [UInt8]) -> String? {
        body.split(separator: UInt8(ascii: "\n")).compactMap { line in
            (try? JSONParser.parse(Array(line.filter { $0 != UInt8(ascii: "\r") })))?["error"]?.stringValue
        }.last
    }

    /// Pull parameters for an image reference: `name`, `name:tag` and `name[:tag]@sha256:…` (the digest is
    /// passed as the tag, which the engine accepts).
    static func pullReference(_ image: String) -> (name: String, reference: String) {
        if let at = image.firstIndex(of: "@") {
            let (name, _) = ImageResolver.splitTag(String(image[..<at]))
            return (name, String(image[image.index(after: at)...]))
        }
        let (name, tag) = ImageResolver.splitTag(image)
        return (name, tag ?? "latest")
    }

    /// Waits for the container to end, copying its log stream into the log file meanwhile; once it has ended and
    /// the stream has drained (so the last lines make it into failure reasons), records how, and removes it.
    private func follow() {
        let engine = self.engine
        let id = containerID
        let exit = self.exit
        let descriptor = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let demultiplexer = LogDemultiplexer(descriptor: descriptor)
        let logs = Task.detached {
            _ = try? await engine.request(
                .GET,
                "/containers/\(id)/logs?follow=1&stdout=1&stderr=1",
                timeout: nil,
                onChunk: { chunk in demultiplexer.feed(chunk) }
            )
            if descriptor >= 0 { close(descriptor) }
        }
        Task.detached {
            var delay = Duration.seconds(1)
            var description: String?
            while description == nil, exit.description == nil {
                do {
                    let waited = try await engine.expect(.POST, "/containers/\(id)/wait", timeout: nil)
                    description = "exited with status \(waited.json?["StatusCode"]?.intValue ?? -1)"
                } catch let failure as DockerEngine.Failure where (400..<500).contains(failure.status) {
                    description = "was removed"
                } catch {
                    // The engine is away: ask again, less and less often.
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(30))
                }
            }
            // Let the log stream drain (bounded), then say how it ended, then release the container.
            _ = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await logs.value
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(2))
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            logs.cancel()
            exit.finish(description: description ?? "was removed")
            await ContainerInstance.remove(engine: engine, container: id)
        }
    }

    /// `POST /containers/{id}/stop?t=grace` (SIGTERM, then SIGKILL after the grace period), then removal; not cut
    /// short by cancellation (a shutdown must still stop its containers).
    func stop(grace: Duration) async {
        let seconds = max(0, Int(grace.components.seconds))
        let engine = self.engine
        let id = containerID
        let running = isRunning
        let exit = self.exit
        await Task.detached {
            if running {
                _ = try? await engine.request(
                    .POST,
                    "/containers/\(id)/stop?t=\(seconds)",
                    timeout: .seconds(Int64(seconds) + 30)
                )
                _ = await exit.wait(atMost: .seconds(5))
            }
            await ContainerInstance.remove(engine: engine, container: id)
        }.value
        exit.finish(description: "was removed")
    }

    /// Removes every container an earlier run of this data directory left (they are labelled with it); nil when
    /// the engine could not be asked.
    static func removeLeftovers(engine: DockerEngine, owner: String) async -> [String]? {
        let filters = JSONValue.object(["label": .array([.string("\(ownerLabel)=\(owner)")])]).serialized()
        guard
            let listed = try? await engine.expect(
                .GET,
                "/containers/json?all=1&filters=\(DockerEngine.query(filters))"
            ),
            let containers = listed.json?.arrayValue
        else { return nil }
        var removed: [String] = []
        for container in containers {
            guard let id = container["Id"]?.stringValue, isContainerID(id) else { continue }
            await remove(engine: engine, container: id)
            removed.append(String(id.prefix(12)))
        }
        return removed
    }
}

/// Docker's log stream for containers without a TTY: frames of an 8-byte header (stream, 0, 0, 0, size as a
/// big-endian UInt32) and the payload. Payloads go to the file; frames may be split across chunks.
final class LogDemultiplexer: @unchecked Sendable {
    private let descriptor: Int32
    private var pending: [UInt8] = []
    private var remaining = 0  // payload bytes of the current frame still to come

    init(descriptor: Int32) { self.descriptor = descriptor }

    // Called on one event loop, chunk after chunk.
    func feed(_ chunk: ByteBuffer) {
        var bytes = chunk.readableBytesView[...]
        while !bytes.isEmpty {
            if remaining > 0 {
                let take = min(remaining, bytes.count)
                write(Array(bytes.prefix(take)))
                bytes = bytes.dropFirst(take)
                remaining -= take
                continue
            }
            let need = 8 - pending.count
            pending.append(contentsOf: bytes.prefix(need))
            bytes = bytes.dropFirst(min(need, bytes.count))
            guard pending.count == 8 else { return }
            remaining = pending[4..<8].reduce(0) { $0 << 8 | Int($1) }
            pending.removeAll(keepingCapacity: true)
        }
    }

    private func write(_ bytes: [UInt8]) {
        guard descriptor >= 0 else { return }
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    }
}

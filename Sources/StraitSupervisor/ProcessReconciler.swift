import Foundation
public import Logging
import NIOPosix
public import ServiceLifecycle
public import StraitCore

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the process backend.
public struct SupervisorConfiguration: Sendable {
    /// Where instance logs and model directories go.
    public var dataDirectory: String
    /// The `strait` binary that serves built-in images as `strait worker`.
    public var workerExecutable: String
    public var zones: ZoneLayout
    /// How long an instance has after SIGTERM before SIGKILL: 30 s, as SageMaker.
    public var stopGrace: Duration
    /// How long a new instance has to answer `/ping` with 200 when the variant does not say
    /// (ContainerStartupHealthCheckTimeoutInSeconds).
    public var defaultStartupTimeout: Duration
    public var pingInterval: Duration
    /// Where model data is fetched from and how much is allowed.
    public var modelData: ModelDataConfiguration
    /// How often every serving instance is asked `GET /ping` (each ping has the probe's 2 s timeout).
    public var healthCheckInterval: Duration
    /// Failed pings in a row after which an instance is stopped and replaced. The first failure already takes it
    /// out of routing; an answer brings it back.
    public var unhealthyThreshold: Int
    /// Image names to executables or built-in images (the configuration file's `images`).
    public var imageTable: [String: String]
    /// Calls in flight at which an instance counts as full, so a zonal endpoint spills to other zones.
    public var instanceCapacity: Int
    /// The Docker Engine API socket (dockerd or podman) for container images; nil runs only the process backend.
    public var dockerSocket: String?
    /// The size at which an instance's log is rotated (one previous file is kept as `<log>.1`).
    public var maximumLogBytes: Int64
    /// The zone and block of a subnet by id, for models' VpcConfig subnets (the EC2 network's); nil looks only at
    /// the configured zones' subnets.
    public var subnetLookup: (@Sendable (String) -> (zone: String, subnet: Subnet)?)?

    public init(
        dataDirectory: String,
        workerExecutable: String,
        zones: ZoneLayout,
        stopGrace: Duration = .seconds(30),
        defaultStartupTimeout: Duration = .seconds(600),
        pingInterval: Duration = .milliseconds(100),
        modelData: ModelDataConfiguration = ModelDataConfiguration(),
        healthCheckInterval: Duration = .seconds(2),
        unhealthyThreshold: Int = 3,
        maximumLogBytes: Int64 = 16 << 20,
        imageTable: [String: String] = [:],
        instanceCapacity: Int = 64,
        dockerSocket: String? = nil,
        subnetLookup: (@Sendable (String) -> (zone: String, subnet: Subnet)?)? = nil
    ) {
        self.subnetLookup = subnetLookup
        self.dockerSocket = dockerSocket
        self.instanceCapacity = instanceCapacity
        self.imageTable = imageTable
        self.maximumLogBytes = maximumLogBytes
        self.healthCheckInterval = healthCheckInterval
        self.unhealthyThreshold = unhealthyThreshold
        self.dataDirectory = dataDirectory
        self.workerExecutable = workerExecutable
        self.zones = zones
        self.stopGrace = stopGrace
        self.defaultStartupTimeout = defaultStartupTimeout
        self.pingInterval = pingInterval
        self.modelData = modelData
    }
}

/// A running instance of a variant.
struct Instance: Sendable {
    let id: String
    let variant: String
    let zone: String
    let address: String
    let port: Int
    /// The Unix socket a built-in runtime also listens on, if any.
    let unixSocket: String?
    let process: any InstanceHandle
    let outstanding = OutstandingRequests()
    let startedAt = Date()
    let capacity: Int
    /// How many instances this one's place in the fleet has replaced.
    var restarts = 0

    var route: InstanceRoute {
        InstanceRoute(
            id: id,
            zone: zone,
            host: address,
            port: port,
            unixSocket: unixSocket,
            outstanding: outstanding,
            capacity: capacity
        )
    }
}

/// The process backend of the reconciler: each instance is a child process that speaks the SageMaker container
/// contract, placed round-robin over the zones of the model's subnets, on an address of its zone.
///
/// A `Service`: on shutdown it stops every instance it started.
public actor ProcessReconciler: InstanceReconciler, Service {
    private struct Fleet {
        var spec: VariantSpec
        var image: DeployedImage
        var resolved: ResolvedImage
        /// The shared model directory (SM_MODEL_DIR), when the model has model data.
        var modelDirectory: String?
        var instances: [Instance]
    }

    /// An instance process that ended.
    struct ExitEvent: Sendable {
        let endpoint: String
        let variant: String
        let instanceID: String
        let zone: String
    }

    private let exits: AsyncStream<ExitEvent>
    private let exitContinuation: AsyncStream<ExitEvent>.Continuation

    private let configuration: SupervisorConfiguration
    private let resolver: ImageResolver
    private let modelData: ModelDataStore
    private let docker: DockerEngine?
    /// Containers an earlier run left are removed once (from `run()`, and before the first container of this run
    /// is made); a sweep the engine did not answer is tried again next time.
    private var leftoverCleanup: Task<Bool, Never>?
    private let probe: HealthProbe
    private let logger: Logger
    private let clock: any WallClock
    private let publish: @Sendable (RoutingTable) -> Void
    private var fleets: [String: [String: Fleet]] = [:]
    private var usedAddresses: Set<String> = []
    /// Serving instances whose last ping failed: out of routing until they answer again.
    private var outOfService: Set<String> = []
    /// Failed pings in a row, per instance id.
    private var failedPings: [String: Int] = [:]
    /// `Instance.restarts` of instances that ended, until their replacement takes the count over.
    private var restartCounts: [String: Int] = [:]
    /// Instances a replacement loop started and has not yet adopted: their exits are that loop's to handle (a second
    /// loop for them would multiply replacements past every back-off).
    private var replacementCandidates: Set<String> = []

    /// - Parameter publish: receives a new routing snapshot whenever the serving instances change.
    public init(
        configuration: SupervisorConfiguration,
        probe: HealthProbe,
        clock: any WallClock = SystemWallClock(),
        logger: Logger,
        publish: @escaping @Sendable (RoutingTable) -> Void = { _ in }
    ) {
        self.publish = publish
        (exits, exitContinuation) = AsyncStream.makeStream(of: ExitEvent.self)
        self.configuration = configuration
        self.resolver = ImageResolver(
            workerExecutable: configuration.workerExecutable,
            table: configuration.imageTable,
            tableFile: (configuration.dataDirectory as NSString).appendingPathComponent("images.json"),
            dockerSocket: configuration.dockerSocket
        )
        // Engine traffic (long polls, container log streams copied to files) gets an event loop of its own, so a
        // chatty container never takes time from the loops that serve invocations.
        self.docker = configuration.dockerSocket.map {
            DockerEngine(socketPath: $0, group: MultiThreadedEventLoopGroup.singleton.next())
        }
        self.modelData = ModelDataStore(
            dataDirectory: configuration.dataDirectory,
            configuration: configuration.modelData
        )
        self.probe = probe
        self.clock = clock
        self.logger = logger
    }

    /// Replaces instances whose process ends while they serve, until graceful shutdown; then stops every instance.
    public func run() async throws {
        let continuation = exitContinuation
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.monitorHealth() }
                if let docker = self.docker { group.addTask { await self.removeLeftoverContainers(docker) } }
                for await event in exits {
                    group.addTask { await self.replace(event) }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
        await stopAll()
    }

    /// Pings every serving instance each ``SupervisorConfiguration/healthCheckInterval``, all at once, until
    /// cancelled.
    private func monitorHealth() async {
        let probe = self.probe
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.healthCheckInterval) } catch { return }
            let serving = fleets.flatMap { endpoint, variants in
                variants.values.flatMap { fleet in fleet.instances.map { (endpoint, fleet.spec.name, $0) } }
            }
            for (_, _, instance) in serving { instance.process.boundLog(maxBytes: configuration.maximumLogBytes) }
            let answers = await withTaskGroup(of: (String, String, Instance, Bool).self) { group in
                for (endpoint, variant, instance) in serving where instance.process.isRunning {
                    group.addTask {
                        (
                            endpoint, variant, instance,
                            await probe.ping(host: instance.address, port: instance.port) == 200
                        )
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            await recordHealth(answers)
        }
    }

    /// Applies a round of pings: a failure takes the instance out of routing at once, an answer brings it back,
    /// and ``SupervisorConfiguration/unhealthyThreshold`` failures in a row stop it; its exit starts the replacement.
    private func recordHealth(_ answers: [(endpoint: String, variant: String, instance: Instance, healthy: Bool)]) async
    {
        var changed = false
        var unhealthy: [Instance] = []
        for answer in answers {
            let id = answer.instance.id
            guard var fleet = fleets[answer.endpoint]?[answer.variant],
                let index = fleet.instances.firstIndex(where: { $0.id == id })
            else {  // stopped or replaced meanwhile
                failedPings[id] = nil
                outOfService.remove(id)
                continue
            }
            // A busy instance (a call in flight) may be too busy to answer /ping: that does not count towards
            // stopping it, and it leaves routing only while another instance of its variant can take the calls. A
            // hung one is still found: its calls end at the invocation timeout, then its pings count.
            if !answer.healthy, answer.instance.outstanding.value > 0 {
                let othersServe = fleet.instances.contains { $0.id != id && !outOfService.contains($0.id) }
                if othersServe, outOfService.insert(id).inserted { changed = true }
                continue
            }
            if answer.healthy {
                failedPings[id] = nil
                if outOfService.remove(id) != nil {
                    changed = true
                    logger.notice("instance answers /ping again", metadata: ["instance": "\(id)"])
                }
                continue
            }
            let failures = (failedPings[id] ?? 0) + 1
            failedPings[id] = failures
            if outOfService.insert(id).inserted {
                changed = true
                logger.warning(
                    "instance did not answer /ping; out of routing",
                    metadata: [
                        "endpoint": "\(answer.endpoint)", "instance": "\(id)", "zone": "\(answer.instance.zone)",
                    ]
                )
            }
            if failures >= configuration.unhealthyThreshold {
                fleet.instances.remove(at: index)
                fleets[answer.endpoint]?[answer.variant] = fleet
                failedPings[id] = nil
                outOfService.remove(id)
                unhealthy.append(answer.instance)
                restartCounts[id] = answer.instance.restarts
                logger.warning(
                    "instance failed \(failures) pings in a row; stopping it for a replacement",
                    metadata: [
                        "endpoint": "\(answer.endpoint)", "instance": "\(id)",
                        "log": "\(answer.instance.process.logTail())",
                    ]
                )
            }
        }
        if changed || !unhealthy.isEmpty { publishRoutes() }
        guard !unhealthy.isEmpty else { return }
        // A hung process may not heed SIGTERM: a short grace, then SIGKILL. Its exit event brings the replacement.
        let grace = min(configuration.stopGrace, .seconds(2))
        await withTaskGroup(of: Void.self) { group in
            for instance in unhealthy { group.addTask { await instance.process.stop(grace: grace) } }
        }
        for instance in unhealthy { usedAddresses.remove(instance.address) }
    }

    /// An instance of a serving fleet ended: it leaves the routing snapshot at once, and a new instance in the same
    /// zone takes its place once healthy, retried with back-off (1 s doubling to 60 s) while the fleet still wants it.
    private func replace(_ event: ExitEvent) async {
        if replacementCandidates.contains(event.instanceID) {
            forgetHealth(of: [event.instanceID])
            return  // the loop that started it sees it fail its health check, and retries after its back-off
        }
        guard var fleet = fleets[event.endpoint]?[event.variant] else {  // torn down
            forgetHealth(of: [event.instanceID])
            return
        }
        if let index = fleet.instances.firstIndex(where: { $0.id == event.instanceID }) {
            let dead = fleet.instances.remove(at: index)
            // Release what the ended instance holds (a container is removed, a pid file deleted).
            Task { [grace = Duration.zero] in await dead.process.stop(grace: grace) }
            forgetHealth(of: [dead.id])
            restartCounts[dead.id] = dead.restarts
            fleets[event.endpoint]?[event.variant] = fleet
            usedAddresses.remove(dead.address)
            publishRoutes()
            logger.warning(
                "instance ended; replacing it",
                metadata: [
                    "endpoint": "\(event.endpoint)", "variant": "\(event.variant)", "instance": "\(dead.id)",
                    "zone": "\(dead.zone)", "exit": "\(dead.process.exitDescription ?? "unknown")",
                    "log": "\(dead.process.logTail())",
                ]
            )
        } else if fleet.instances.count >= fleet.spec.instanceCount {
            forgetHealth(of: [event.instanceID])
            return  // stopped on purpose (scale-in, update, failed deployment): nothing is missing
        }
        // Otherwise a deployment dropped it from the fleet while it waited: still missing, so replace it.
        let restarts = restartCounts.removeValue(forKey: event.instanceID) ?? 0
        let spec = fleet.spec
        guard let zone = zonesFor(spec).first(where: { $0.zone == event.zone }) ?? zonesFor(spec).first else { return }
        let timeout =
            spec.startupHealthCheckTimeoutSeconds.map { Duration.seconds($0) } ?? configuration.defaultStartupTimeout
        var delay = Duration.seconds(1)
        while !Task.isCancelled {
            // The fleet must still be the one that lost the instance, and still short of it.
            guard let current = fleets[event.endpoint]?[event.variant], !current.spec.needsNewInstances(for: spec),
                current.instances.count < current.spec.instanceCount
            else { return }
            if var instance = try? await startInstance(
                endpoint: event.endpoint,
                variant: current.spec,
                image: current.resolved,
                modelDirectory: current.modelDirectory,
                zone: zone.zone,
                subnet: zone.subnet,
                replacement: true
            ) {
                defer { replacementCandidates.remove(instance.id) }
                instance.restarts = restarts + 1
                if await waitHealthy([instance], timeouts: [spec.name: timeout]) == nil,
                    let latest = fleets[event.endpoint]?[event.variant], !latest.spec.needsNewInstances(for: spec),
                    latest.instances.count < latest.spec.instanceCount
                {
                    fleets[event.endpoint]?[event.variant]?.instances.append(instance)
                    publishRoutes()
                    logger.info(
                        "instance replaced",
                        metadata: [
                            "endpoint": "\(event.endpoint)", "instance": "\(instance.id)", "zone": "\(instance.zone)",
                        ]
                    )
                    return
                }
                await stop([instance])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(60))
        }
    }

    /// Stops every instance of every endpoint, all at once.
    public func stopAll() async {
        let instances = fleets.values.flatMap { $0.values.flatMap(\.instances) }
        fleets.removeAll()
        publishRoutes()
        await stop(instances)
    }

    public func deploy(endpoint: String, generation: Int, spec: DeploymentSpec) async -> DeploymentOutcome {
        var resolved: [String: (ResolvedImage, DeployedImage)] = [:]
        for variant in spec.variants {
            switch resolver.resolve(variant.image) {
            case .success(let image):
                resolved[variant.name] = (
                    image,
                    DeployedImage(
                        specifiedImage: variant.image,
                        resolvedImage: image.description,
                        resolutionTime: clock.now()
                    )
                )
            case .failure(let failure):
                return .failed(reason: "Production variant \(variant.name): \(failure.reason)")
            }
        }
        // Model data: one fetch per model, shared by its instances (and by later deployments of the same data).
        var modelDirectories: [String: String] = [:]
        for variant in spec.variants {
            guard let url = variant.modelDataURL, !url.isEmpty else { continue }
            let source = ModelDataSource(
                url: url,
                isPrefix: variant.modelDataIsPrefix ?? false,
                compression: variant.modelDataIsCompressed.map { $0 ? .gzip : .none } ?? .detect
            )
            do {
                modelDirectories[variant.name] = try await modelData.directory(
                    for: source,
                    timeout: variant.modelDataDownloadTimeoutSeconds.map { .seconds($0) }
                )
            } catch {
                return .failed(reason: "Production variant \(variant.name): \(error.reason)")
            }
        }
        let current = fleets[endpoint] ?? [:]

        var started: [Instance] = []
        var next: [String: Fleet] = [:]
        var retired: [Instance] = []
        for variant in spec.variants {
            guard let (image, deployed) = resolved[variant.name] else { continue }
            var kept: [Instance] = []
            var keptImage = deployed
            if let fleet = current[variant.name], !fleet.spec.needsNewInstances(for: variant) {
                kept = Array(fleet.instances.prefix(variant.instanceCount))
                retired += fleet.instances.dropFirst(variant.instanceCount)
                keptImage = fleet.image
            } else if let fleet = current[variant.name] {
                retired += fleet.instances
            }
            let zones = zonesFor(variant)
            let missing = variant.subnetIDs.filter { subnet(id: $0) == nil }
            guard missing.isEmpty, !zones.isEmpty else {
                await stop(started)
                return .failed(
                    reason: "Production variant \(variant.name): the subnets \(missing) of the model's VpcConfig do "
                        + "not exist."
                )
            }
            var fleetInstances = kept
            for index in kept.count..<max(kept.count, variant.instanceCount) {
                let zoneIndex = index % zones.count
                do {
                    let instance = try await startInstance(
                        endpoint: endpoint,
                        variant: variant,
                        image: image,
                        modelDirectory: modelDirectories[variant.name],
                        zone: zones[zoneIndex].zone,
                        subnet: zones[zoneIndex].subnet
                    )
                    started.append(instance)
                    fleetInstances.append(instance)
                } catch {
                    await stop(started)
                    return .failed(reason: "Production variant \(variant.name): \(error.reason)")
                }
            }
            next[variant.name] = Fleet(
                spec: variant,
                image: keptImage,
                resolved: image,
                modelDirectory: modelDirectories[variant.name],
                instances: fleetInstances
            )
        }
        for (name, fleet) in current where next[name] == nil { retired += fleet.instances }

        let timeouts = Dictionary(
            spec.variants.map { variant in
                (
                    variant.name,
                    variant.startupHealthCheckTimeoutSeconds.map { Duration.seconds($0) }
                        ?? configuration.defaultStartupTimeout
                )
            },
            uniquingKeysWith: { a, _ in a }
        )
        if let failure = await waitHealthy(started, timeouts: timeouts) {
            await stop(started)
            return .failed(reason: failure)
        }
        // While this deployment waited, instances may have died and been replaced: keep what runs now.
        reconcileWithLatest(&next, &retired, endpoint: endpoint)
        fleets[endpoint] = next
        publishRoutes()
        await stop(retired)
        return .succeeded(images: next.mapValues { [$0.image] })
    }

    /// Folds into a deployment's result what happened to the endpoint's fleets during its awaits: kept instances
    /// whose process has ended are dropped (their replacements, if already added, are kept instead), and anything
    /// running that the result neither keeps nor retires is retired, so no instance is lost track of.
    private func reconcileWithLatest(_ next: inout [String: Fleet], _ retired: inout [Instance], endpoint: String) {
        let latest = fleets[endpoint] ?? [:]
        var accounted = Set(retired.map(\.id))
        for name in Array(next.keys) {
            guard var fleet = next[name] else { continue }
            fleet.instances.removeAll { !$0.process.isRunning }
            if let current = latest[name], !current.spec.needsNewInstances(for: fleet.spec) {
                for instance in current.instances
                where instance.process.isRunning && !fleet.instances.contains(where: { $0.id == instance.id })
                    && !accounted.contains(instance.id)
                {
                    fleet.instances.append(instance)
                }
            }
            while fleet.instances.count > fleet.spec.instanceCount, let extra = fleet.instances.popLast() {
                retired.append(extra)
            }
            accounted.formUnion(fleet.instances.map(\.id))
            next[name] = fleet
        }
        for fleet in latest.values {
            for instance in fleet.instances where !accounted.contains(instance.id) {
                retired.append(instance)
                accounted.insert(instance.id)
            }
        }
    }

    /// The running instances of an endpoint.
    func instances(of endpoint: String) -> [Instance] {
        (fleets[endpoint] ?? [:]).values.flatMap(\.instances)
    }

    /// What `strait instances` shows: the serving instances of an endpoint, by variant, zone and id.
    public func instanceSummaries(of endpoint: String) -> [InstanceSummary] {
        instances(of: endpoint).map { instance in
            InstanceSummary(
                id: instance.id,
                variant: instance.variant,
                zone: instance.zone,
                address: instance.address,
                port: instance.port,
                state: !instance.process.isRunning
                    ? "Stopped" : outOfService.contains(instance.id) ? "OutOfService" : "InService",
                pid: instance.process.pid,
                restarts: instance.restarts,
                startedAt: instance.startedAt
            )
        }.sorted { ($0.variant, $0.zone, $0.id) < ($1.variant, $1.zone, $1.id) }
    }

    public func tearDown(endpoint: String) async {
        guard let current = fleets.removeValue(forKey: endpoint) else { return }
        let instances = current.values.flatMap(\.instances)
        forgetHealth(of: instances.map(\.id))
        publishRoutes()
        await stop(instances)
    }

    /// Drops the health and restart bookkeeping of instances that are gone.
    private func forgetHealth(of ids: [String]) {
        for id in ids {
            failedPings[id] = nil
            outOfService.remove(id)
            restartCounts[id] = nil
        }
    }

    /// Builds the routing snapshot from the fleets that serve now and hands it to the data plane.
    private func publishRoutes() {
        let endpoints = fleets.map { name, variants in
            EndpointRoute(
                name: name,
                variants: variants.values.sorted { $0.spec.name < $1.spec.name }.map { fleet in
                    VariantRoute(
                        name: fleet.spec.name,
                        weight: fleet.spec.weight,
                        strategy: RoutingStrategy(rawValue: fleet.spec.routingStrategy) ?? .random,
                        instances: fleet.instances.filter { !outOfService.contains($0.id) }.map(\.route)
                    )
                }
            )
        }
        publish(RoutingTable(endpoints: endpoints))
    }

    /// A subnet's zone and block: the network's, else the configured zones'.
    private func subnet(id: String) -> (zone: String, subnet: Subnet)? {
        configuration.subnetLookup?(id)
            ?? configuration.zones.zone(ofSubnet: id).flatMap { zone in
                configuration.zones.subnet(id: id).map { (zone.name, $0) }
            }
    }

    /// The zones (with a subnet each) a variant's instances go to, in round-robin order: the zones of the model's
    /// VpcConfig subnets (those that exist), else one subnet of every configured zone.
    private func zonesFor(_ variant: VariantSpec) -> [(zone: String, subnet: Subnet)] {
        var result: [(zone: String, subnet: Subnet)] = []
        for id in variant.subnetIDs {
            if let (zone, subnet) = subnet(id: id), !result.contains(where: { $0.zone == zone }) {
                result.append((zone, subnet))
            }
        }
        if variant.subnetIDs.isEmpty {
            result = configuration.zones.zones.compactMap { zone in zone.subnets.first.map { (zone.name, $0) } }
        }
        return result
    }

    private func startInstance(
        endpoint: String,
        variant: VariantSpec,
        image: ResolvedImage,
        modelDirectory sharedModelDirectory: String?,
        zone: String,
        subnet: Subnet,
        replacement: Bool = false
    ) async throws(InstanceStartFailure) -> Instance {
        guard let address = allocateAddress(in: subnet) else {
            throw InstanceStartFailure(reason: "No free address is left in subnet \(subnet.id) (\(subnet.cidr)).")
        }
        // A container on the host network usually listens on every address: its port must be free on all of them.
        guard let port = Self.freePort(on: image.containerImage == nil ? address : "0.0.0.0") else {
            usedAddresses.remove(address)
            throw InstanceStartFailure(reason: "No free port on \(address).")
        }
        let id = "i-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        // Marked before the process exists, so an exit that comes at once is already the replacement loop's.
        if replacement { replacementCandidates.insert(id) }
        let base = (configuration.dataDirectory as NSString).appendingPathComponent("instances/\(endpoint)")
        let modelDirectory =
            sharedModelDirectory ?? (base as NSString).appendingPathComponent("\(id)/model")
        try? FileManager.default.createDirectory(atPath: modelDirectory, withIntermediateDirectories: true)
        var environment = variant.environment
        environment["SAGEMAKER_BIND_TO_PORT"] = String(port)
        environment["STRAIT_BIND_ADDRESS"] = address
        if image.containerImage == nil {
            // A container gets SM_MODEL_DIR as its mount point and keeps its image's PATH.
            environment["SM_MODEL_DIR"] = modelDirectory
            environment["PATH"] = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        }
        // Built-in runtimes also serve on a Unix socket (when its path fits sockaddr_un), which the data plane uses.
        var unixSocket: String?
        let socketPath = (base as NSString).appendingPathComponent("\(id).sock")
        if image.executable == configuration.workerExecutable, socketPath.utf8.count < 100 {
            unixSocket = socketPath
            environment["STRAIT_UNIX_SOCKET"] = socketPath
        }
        let logPath = (base as NSString).appendingPathComponent("\(id).log")
        try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        do throws(InstanceStartFailure) {
            let process: any InstanceHandle
            if let containerImage = image.containerImage {
                guard let docker else {
                    throw InstanceStartFailure(
                        reason: "Image \(containerImage) needs a Docker engine; none is configured."
                    )
                }
                await removeLeftoverContainers(docker)
                process = try await ContainerInstance.start(
                    engine: docker,
                    spec: ContainerInstance.Spec(
                        name: "strait-\(endpoint)-\(id)",
                        image: containerImage,
                        environment: environment,
                        modelDirectory: modelDirectory,
                        labels: [
                            ContainerInstance.endpointLabel: endpoint, ContainerInstance.variantLabel: variant.name,
                            ContainerInstance.instanceLabel: id,
                            ContainerInstance.ownerLabel: configuration.dataDirectory,
                        ],
                        resources: InstanceResources.forInstanceType(variant.instanceType),
                        logPath: logPath
                    )
                )
            } else {
                process = try InstanceProcess(
                    id: id,
                    executable: image.executable,
                    arguments: image.arguments,
                    environment: environment,
                    logPath: logPath
                )
            }
            logger.info(
                "instance started",
                metadata: [
                    "endpoint": "\(endpoint)", "variant": "\(variant.name)", "instance": "\(id)", "zone": "\(zone)",
                    "address": "\(address):\(port)", "pid": "\(process.pid)",
                ]
            )
            let event = ExitEvent(endpoint: endpoint, variant: variant.name, instanceID: id, zone: zone)
            process.onExit { [exitContinuation, unixSocket] in
                if let unixSocket { unlink(unixSocket) }
                exitContinuation.yield(event)
            }
            return Instance(
                id: id,
                variant: variant.name,
                zone: zone,
                address: address,
                port: port,
                unixSocket: unixSocket,
                process: process,
                capacity: configuration.instanceCapacity
            )
        } catch {
            usedAddresses.remove(address)
            replacementCandidates.remove(id)
            throw error
        }
    }

    /// Removes the containers an earlier run of this data directory left, once.
    private func removeLeftoverContainers(_ docker: DockerEngine) async {
        let cleanup =
            leftoverCleanup
            ?? Task { [logger, owner = configuration.dataDirectory] in
                guard let removed = await ContainerInstance.removeLeftovers(engine: docker, owner: owner) else {
                    return false
                }
                if !removed.isEmpty {
                    logger.warning("removed containers left by an earlier run", metadata: ["containers": "\(removed)"])
                }
                return true
            }
        leftoverCleanup = cleanup
        if await !cleanup.value, leftoverCleanup == cleanup { leftoverCleanup = nil }
    }

    /// Waits until every instance answers `/ping` with 200; the failure reason of the first that cannot.
    private func waitHealthy(_ instances: [Instance], timeouts: [String: Duration]) async -> String? {
        let probe = self.probe
        let interval = configuration.pingInterval
        return await withTaskGroup(of: String?.self) { group in
            for instance in instances {
                let timeout = timeouts[instance.variant] ?? configuration.defaultStartupTimeout
                group.addTask {
                    let clock = ContinuousClock()
                    let deadline = clock.now + timeout
                    while clock.now < deadline {
                        if Task.isCancelled { return "The deployment was cancelled." }
                        if let exit = instance.process.exitDescription {
                            return
                                "The primary container for production variant \(instance.variant) did not pass the ping health check: the process \(exit) before answering /ping. Last log lines: \(instance.process.logTail())"
                        }
                        if await probe.ping(host: instance.address, port: instance.port) == 200 { return nil }
                        try? await Task.sleep(for: interval)
                    }
                    return
                        "The primary container for production variant \(instance.variant) did not pass the ping health check within \(timeout). Last log lines: \(instance.process.logTail())"
                }
            }
            for await result in group {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            return nil
        }
    }

    private func stop(_ instances: [Instance]) async {
        let grace = configuration.stopGrace
        await withTaskGroup(of: Void.self) { group in
            for instance in instances {
                group.addTask { await instance.process.stop(grace: grace) }
            }
        }
        for instance in instances {
            usedAddresses.remove(instance.address)
            logger.info("instance stopped", metadata: ["instance": "\(instance.id)", "pid": "\(instance.process.pid)"])
        }
    }

    /// The next address of the subnet no instance holds, skipping the network address and the first hosts (the
    /// zone's listeners live there).
    private func allocateAddress(in subnet: Subnet) -> String? {
        var offset: UInt32 = 10
        while let address = subnet.cidr.address(at: offset), UInt64(offset) < subnet.cidr.size - 1 {
            if !usedAddresses.contains(address) {
                usedAddresses.insert(address)
                return address
            }
            offset += 1
        }
        return nil
    }

    /// A TCP port that is free on `address` now (the kernel picks it).
    static func freePort(on address: String) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return nil }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

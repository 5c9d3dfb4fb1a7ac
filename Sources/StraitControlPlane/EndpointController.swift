import Foundation
public import Logging
public import ServiceLifecycle
public import StraitCore
public import StraitStore

/// Carries out what the endpoint lifecycle decides: runs deployments and teardowns on the reconciler, then feeds
/// their outcome back into the lifecycle and the store.
///
/// A `Service`: jobs run as child tasks of `run()`, so shutting down cancels them and waits for them.
public final class EndpointController: Service {
    enum Job: Sendable {
        case deploy(endpoint: String, generation: Int, spec: DeploymentSpec)
        case tearDown(endpoint: String)
    }

    private let store: any ResourceStore
    private let reconciler: any InstanceReconciler
    private let clock: any WallClock
    private let logger: Logger
    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation

    public init(store: any ResourceStore, reconciler: any InstanceReconciler, clock: any WallClock, logger: Logger) {
        self.store = store
        self.reconciler = reconciler
        self.clock = clock
        self.logger = logger
        (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    /// Hands the lifecycle's action to the worker; returns at once.
    func perform(_ action: EndpointLifecycle.Action, endpoint: String) {
        switch action {
        case .deploy(let generation, let spec):
            continuation.yield(.deploy(endpoint: endpoint, generation: generation, spec: spec))
        case .tearDown:
            continuation.yield(.tearDown(endpoint: endpoint))
        case .removeRecord:
            do { _ = try store.deleteEndpoint(named: endpoint) } catch {
                logger.error(
                    "cannot delete endpoint record",
                    metadata: ["endpoint": "\(endpoint)", "error": "\(error)"]
                )
            }
        case .none:
            break
        }
    }

    /// Brings back every stored endpoint after a start: what was running is deployed again, deletions finish.
    public func recoverEndpoints() throws(ServiceError) {
        let records: [EndpointRecord]
        do { records = try store.endpoints() } catch { throw error.serviceError }
        for record in records {
            let action = try store.updateEndpoint(named: record.name) {
                (record: inout EndpointRecord) throws(ServiceError) in
                var lifecycle = EndpointLifecycle(record)
                let action = lifecycle.recovered(now: clock.now())
                record = lifecycle.record
                return action
            }
            if let action { perform(action, endpoint: record.name) }
        }
    }

    /// Runs jobs until graceful shutdown; then cancels the ones still running (an interrupted deployment stops the
    /// instances it started and is redone by ``recoverEndpoints()`` on the next start).
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await job in jobs {
                    group.addTask { await self.execute(job) }
                }
            } onGracefulShutdown: {
                self.continuation.finish()
            }
            group.cancelAll()
        }
    }

    private func execute(_ job: Job) async {
        switch job {
        case .deploy(let endpoint, let generation, let spec):
            logger.info("deploying", metadata: ["endpoint": "\(endpoint)", "generation": "\(generation)"])
            let outcome = await reconciler.deploy(endpoint: endpoint, generation: generation, spec: spec)
            if Task.isCancelled { return }
            apply(to: endpoint) { lifecycle, now in
                switch outcome {
                case .succeeded(let images):
                    return lifecycle.deploymentSucceeded(generation: generation, images: images, now: now)
                case .failed(let reason):
                    return lifecycle.deploymentFailed(generation: generation, reason: reason, now: now)
                }
            }
            if case .failed(let reason) = outcome {
                logger.warning("deployment failed", metadata: ["endpoint": "\(endpoint)", "reason": "\(reason)"])
            } else {
                logger.info(
                    "endpoint in service",
                    metadata: ["endpoint": "\(endpoint)", "generation": "\(generation)"]
                )
            }
        case .tearDown(let endpoint):
            await reconciler.tearDown(endpoint: endpoint)
            if Task.isCancelled { return }
            apply(to: endpoint) { lifecycle, _ in lifecycle.tearDownFinished() }
            logger.info("endpoint deleted", metadata: ["endpoint": "\(endpoint)"])
        }
    }

    private func apply(
        to endpoint: String,
        _ event: @escaping (inout EndpointLifecycle, _ now: Date) -> EndpointLifecycle.Action
    ) {
        do {
            let action = try store.updateEndpoint(named: endpoint) {
                (record: inout EndpointRecord) throws(ServiceError) in
                var lifecycle = EndpointLifecycle(record)
                let action = event(&lifecycle, clock.now())
                record = lifecycle.record
                return action
            }
            if let action { perform(action, endpoint: endpoint) }
        } catch {
            logger.error("cannot record the outcome", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
        }
    }
}

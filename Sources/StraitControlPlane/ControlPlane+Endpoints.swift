import Foundation
import StraitCore
import StraitStore

/// Endpoints: created from an endpoint config, brought up by the reconciler, updated and deleted through the
/// lifecycle state machine.
extension ControlPlane {
    func createEndpoint(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("EndpointName")
        let spec = try resolveDeployment(configName: try request.required("EndpointConfigName"))
        let arn = account.arn(.endpoint, name)
        try checkInstanceLimits(spec, used: try instanceUsage(excluding: name))
        let (lifecycle, action) = EndpointLifecycle.create(name: name, arn: arn, spec: spec, now: clock.now())
        try storing { () throws(StoreError) in try store.insertEndpoint(lifecycle.record, tags: request.tags()) }
        controller.perform(action, endpoint: name)
        return .object(["EndpointArn": .string(arn)])
    }

    func describeEndpoint(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("EndpointName")
        guard let record = try storing({ () throws(StoreError) in try store.endpoint(named: name) }) else {
            throw notFound(.endpoint, name)
        }
        return Self.describe(record)
    }

    func listEndpoints(_ request: Request) throws(ServiceError) -> JSONValue {
        let records = try storing { () throws(StoreError) in try store.endpoints() }
        let items = records.map { record in
            ListItem(
                name: record.name,
                creationTime: record.creationTime,
                lastModifiedTime: record.lastModifiedTime,
                status: record.status.rawValue,
                summary: .object([
                    "EndpointName": .string(record.name), "EndpointArn": .string(record.arn),
                    "CreationTime": Timestamps.json(record.creationTime),
                    "LastModifiedTime": Timestamps.json(record.lastModifiedTime),
                    "EndpointStatus": .string(record.status.rawValue),
                ])
            )
        }
        return try ListQuery(request).page(items, key: "Endpoints")
    }

    func updateEndpoint(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("EndpointName")
        var spec = try resolveDeployment(configName: try request.required("EndpointConfigName"))
        let retain = request["RetainAllVariantProperties"]?.boolValue ?? false
        let excluded = Set(
            (request["ExcludeRetainedVariantProperties"]?.arrayValue ?? []).compactMap {
                $0["VariantPropertyType"]?.stringValue
            }
        )
        let used = try instanceUsage(excluding: name)
        let (action, stored) = try mutateEndpoint(name) {
            (lifecycle: inout EndpointLifecycle, now) throws(ServiceError) in
            if retain {
                for index in spec.variants.indices {
                    guard
                        let current = lifecycle.record.deployment.variants.first(where: {
                            $0.name == spec.variants[index].name
                        })
                    else { continue }
                    if !excluded.contains("DesiredWeight") { spec.variants[index].weight = current.weight }
                    if !excluded.contains("DesiredInstanceCount") {
                        spec.variants[index].instanceCount = current.instanceCount
                    }
                }
            }
            try checkInstanceLimits(spec, used: used)
            return try lifecycle.updateRequested(spec: spec, now: now)
        }
        controller.perform(action, endpoint: stored)
        return .object(["EndpointArn": .string(account.arn(.endpoint, stored))])
    }

    func updateWeightsAndCapacities(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("EndpointName")
        var changes: [(variant: String, weight: Double?, instanceCount: Int?)] = []
        var seen = Set<String>()
        for item in request["DesiredWeightsAndCapacities"]?.arrayValue ?? [] {
            guard let variant = item["VariantName"]?.stringValue else { continue }
            guard seen.insert(variant).inserted else {
                throw .validation("The variant name \"\(variant)\" was non-unique within the request.")
            }
            let weight = item["DesiredWeight"]?.doubleValue
            let count = Request.count(item["DesiredInstanceCount"])
            guard weight != nil || count != nil else {
                throw .validation(
                    "Either DesiredWeight or DesiredInstanceCount must be specified for variant \"\(variant)\"."
                )
            }
            changes.append((variant, weight, count))
        }
        let used = try instanceUsage(excluding: name)
        let (action, stored) = try mutateEndpoint(name) {
            (lifecycle: inout EndpointLifecycle, now) throws(ServiceError) in
            let action = try lifecycle.weightsAndCapacitiesRequested(changes, now: now)
            try checkInstanceLimits(lifecycle.record.target, used: used)
            return action
        }
        controller.perform(action, endpoint: stored)
        return .object(["EndpointArn": .string(account.arn(.endpoint, stored))])
    }

    func deleteEndpoint(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("EndpointName")
        let (action, stored) = try mutateEndpoint(name) {
            (lifecycle: inout EndpointLifecycle, now) throws(ServiceError) in
            try lifecycle.deleteRequested(now: now)
        }
        controller.perform(action, endpoint: stored)
        return .object([:])
    }

    /// Applies a lifecycle event to a stored endpoint in one transaction and returns the action to carry out.
    /// - Returns: the action, and the endpoint's name as stored (the request may spell it in another case).
    private func mutateEndpoint(
        _ name: String,
        _ event: (inout EndpointLifecycle, Date) throws(ServiceError) -> EndpointLifecycle.Action
    ) throws(ServiceError) -> (EndpointLifecycle.Action, name: String) {
        let now = clock.now()
        let result = try store.updateEndpoint(named: name) { (record: inout EndpointRecord) throws(ServiceError) in
            var lifecycle = EndpointLifecycle(record)
            let action = try event(&lifecycle, now)
            record = lifecycle.record
            return (action, record.name)
        }
        guard let result else { throw notFound(.endpoint, name) }
        return result
    }

    /// Reads an endpoint config and its models into the deployment an endpoint will run.
    func resolveDeployment(configName: String) throws(ServiceError) -> DeploymentSpec {
        guard
            let config = try storing({ () throws(StoreError) in try store.document(.endpointConfig, named: configName) }
            )
        else { throw notFound(.endpointConfig, configName) }
        var variants: [VariantSpec] = []
        for variant in config.document["ProductionVariants"]?.arrayValue ?? [] {
            guard let variantName = variant["VariantName"]?.stringValue,
                let modelName = variant["ModelName"]?.stringValue
            else { throw .internalFailure() }
            guard let model = try storing({ () throws(StoreError) in try store.document(.model, named: modelName) })
            else { throw notFound(.model, modelName) }
            let container = model.document["PrimaryContainer"] ?? model.document["Containers"]?.arrayValue?.first
            let environment = (container?["Environment"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            let source = container?["ModelDataSource"]?["S3DataSource"]
            let modelData = container?["ModelDataUrl"]?.stringValue ?? source?["S3Uri"]?.stringValue
            let fromSource = container?["ModelDataUrl"] == nil && source != nil
            let serverless = variant["ServerlessConfig"] != nil
            variants.append(
                VariantSpec(
                    name: variantName,
                    modelName: model.name,
                    image: container?["Image"]?.stringValue ?? "",
                    environment: environment,
                    modelDataURL: modelData,
                    modelDataIsPrefix: fromSource ? source?["S3DataType"]?.stringValue == "S3Prefix" : nil,
                    modelDataIsCompressed: fromSource ? source?["CompressionType"]?.stringValue == "Gzip" : nil,
                    instanceType: variant["InstanceType"]?.stringValue,
                    instanceCount: serverless ? 1 : (Request.count(variant["InitialInstanceCount"]) ?? 1),
                    weight: variant["InitialVariantWeight"]?.doubleValue ?? 1,
                    routingStrategy: variant["RoutingConfig"]?["RoutingStrategy"]?.stringValue ?? "RANDOM",
                    subnetIDs: (model.document["VpcConfig"]?["Subnets"]?.arrayValue ?? []).compactMap(\.stringValue),
                    securityGroupIDs: (model.document["VpcConfig"]?["SecurityGroupIds"]?.arrayValue ?? [])
                        .compactMap(\.stringValue),
                    startupHealthCheckTimeoutSeconds: variant["ContainerStartupHealthCheckTimeoutInSeconds"]?.intValue,
                    modelDataDownloadTimeoutSeconds: variant["ModelDataDownloadTimeoutInSeconds"]?.intValue
                )
            )
        }
        return DeploymentSpec(configName: config.name, variants: variants)
    }

    /// The instances per instance type that every endpoint but `endpoint` runs or is bringing up.
    func instanceUsage(excluding endpoint: String) throws(ServiceError) -> [String: Int] {
        var used: [String: Int] = [:]
        for record in try storing({ () throws(StoreError) in try store.endpoints() })
        where record.name.lowercased() != endpoint.lowercased() {
            for variant in record.target.variants {
                used[variant.instanceType ?? "serverless", default: 0] += variant.instanceCount
            }
        }
        return used
    }

    /// Refuses a deployment that would take an instance type past the account's limit, with SageMaker's
    /// ResourceLimitExceeded wording.
    func checkInstanceLimits(_ spec: DeploymentSpec, used: [String: Int]) throws(ServiceError) {
        var requested: [String: Int] = [:]
        for variant in spec.variants {
            requested[variant.instanceType ?? "serverless", default: 0] += variant.instanceCount
        }
        for (type, delta) in requested.sorted(by: { $0.key < $1.key })
        where (used[type] ?? 0) + delta > limits.instancesPerType {
            throw .resourceLimitExceeded(
                "The account-level service limit '\(type) for endpoint usage' is \(limits.instancesPerType) Instances, with current utilization of \(used[type] ?? 0) Instances and a request delta of \(delta) Instances. Start strait serve with a higher --max-instances-per-type to raise this limit."
            )
        }
    }

    /// DescribeEndpoint's answer for a record.
    static func describe(_ record: EndpointRecord) -> JSONValue {
        var members: [String: JSONValue] = [
            "EndpointName": .string(record.name),
            "EndpointArn": .string(record.arn),
            "EndpointConfigName": .string(record.configName),
            "EndpointStatus": .string(record.status.rawValue),
            "CreationTime": Timestamps.json(record.creationTime),
            "LastModifiedTime": Timestamps.json(record.lastModifiedTime),
            "ProductionVariants": .array(
                record.variants.map { variant in
                    .object([
                        "VariantName": .string(variant.name),
                        "CurrentWeight": .number(variant.currentWeight),
                        "DesiredWeight": .number(variant.desiredWeight),
                        "CurrentInstanceCount": .number(Double(variant.currentInstanceCount)),
                        "DesiredInstanceCount": .number(Double(variant.desiredInstanceCount)),
                        "DeployedImages": .array(
                            variant.deployedImages.map { image in
                                .object([
                                    "SpecifiedImage": .string(image.specifiedImage),
                                    "ResolvedImage": .string(image.resolvedImage),
                                    "ResolutionTime": Timestamps.json(image.resolutionTime),
                                ])
                            }
                        ),
                    ])
                }
            ),
        ]
        if let reason = record.failureReason { members["FailureReason"] = .string(reason) }
        if let pending = record.pending {
            members["PendingDeploymentSummary"] = .object([
                "EndpointConfigName": .string(pending.configName),
                "StartTime": Timestamps.json(record.lastModifiedTime),
                "ProductionVariants": .array(
                    pending.variants.map { variant in
                        .object([
                            "VariantName": .string(variant.name),
                            "DesiredWeight": .number(variant.weight),
                            "DesiredInstanceCount": .number(Double(variant.instanceCount)),
                        ])
                    }
                ),
            ])
        }
        return .object(members)
    }
}

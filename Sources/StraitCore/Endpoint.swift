public import Foundation

/// SageMaker's `EndpointStatus` values.
public enum EndpointStatus: String, Sendable, Codable, CaseIterable {
    case outOfService = "OutOfService"
    case creating = "Creating"
    case updating = "Updating"
    case systemUpdating = "SystemUpdating"
    case rollingBack = "RollingBack"
    case inService = "InService"
    case deleting = "Deleting"
    case failed = "Failed"
    case updateRollbackFailed = "UpdateRollbackFailed"
}

/// What one production variant runs: resolved from the endpoint config and its model when a deployment starts,
/// so later changes to the model or config do not change a running endpoint (as in SageMaker).
public struct VariantSpec: Sendable, Codable, Equatable {
    public var name: String
    public var modelName: String
    /// The primary container's image, as the model names it.
    public var image: String
    public var environment: [String: String]
    public var modelDataURL: String?
    /// ModelDataSource.S3DataSource's S3DataType S3Prefix: every object under the URL, not one object.
    public var modelDataIsPrefix: Bool?
    /// ModelDataSource.S3DataSource's CompressionType: true for Gzip (a model.tar.gz), false for None; nil when the
    /// model gave a ModelDataUrl (a .tar.gz is recognised by its bytes).
    public var modelDataIsCompressed: Bool?
    public var instanceType: String?
    public var instanceCount: Int
    public var weight: Double
    /// `RANDOM` or `LEAST_OUTSTANDING_REQUESTS`.
    public var routingStrategy: String
    /// The model's VpcConfig subnets; empty means the default subnets.
    public var subnetIDs: [String]
    /// The model's VpcConfig security groups (nil in records written before there were security groups).
    public var securityGroupIDs: [String]?
    public var startupHealthCheckTimeoutSeconds: Int?
    public var modelDataDownloadTimeoutSeconds: Int?

    public init(
        name: String,
        modelName: String,
        image: String,
        environment: [String: String] = [:],
        modelDataURL: String? = nil,
        modelDataIsPrefix: Bool? = nil,
        modelDataIsCompressed: Bool? = nil,
        instanceType: String? = nil,
        instanceCount: Int,
        weight: Double,
        routingStrategy: String = "RANDOM",
        subnetIDs: [String] = [],
        securityGroupIDs: [String]? = nil,
        startupHealthCheckTimeoutSeconds: Int? = nil,
        modelDataDownloadTimeoutSeconds: Int? = nil
    ) {
        self.name = name
        self.modelName = modelName
        self.image = image
        self.environment = environment
        self.modelDataURL = modelDataURL
        self.modelDataIsPrefix = modelDataIsPrefix
        self.modelDataIsCompressed = modelDataIsCompressed
        self.instanceType = instanceType
        self.instanceCount = instanceCount
        self.weight = weight
        self.routingStrategy = routingStrategy
        self.subnetIDs = subnetIDs
        self.securityGroupIDs = securityGroupIDs
        self.startupHealthCheckTimeoutSeconds = startupHealthCheckTimeoutSeconds
        self.modelDataDownloadTimeoutSeconds = modelDataDownloadTimeoutSeconds
    }

    /// Whether moving from `self` to `other` needs new instances (rather than a change of count or weight).
    public func needsNewInstances(for other: VariantSpec) -> Bool {
        var a = self
        var b = other
        a.instanceCount = 0
        b.instanceCount = 0
        a.weight = 0
        b.weight = 0
        return a != b
    }
}

/// The endpoint config an endpoint runs, with every variant resolved.
public struct DeploymentSpec: Sendable, Codable, Equatable {
    public var configName: String
    public var variants: [VariantSpec]

    public init(configName: String, variants: [VariantSpec]) {
        self.configName = configName
        self.variants = variants
    }
}

/// An image as deployed: what was asked for, what it resolved to, and when.
public struct DeployedImage: Sendable, Codable, Equatable {
    public var specifiedImage: String
    public var resolvedImage: String
    public var resolutionTime: Date

    public init(specifiedImage: String, resolvedImage: String, resolutionTime: Date) {
        self.specifiedImage = specifiedImage
        self.resolvedImage = resolvedImage
        self.resolutionTime = resolutionTime
    }
}

/// What DescribeEndpoint reports of one variant.
public struct VariantState: Sendable, Codable, Equatable {
    public var name: String
    public var currentWeight: Double
    public var desiredWeight: Double
    public var currentInstanceCount: Int
    public var desiredInstanceCount: Int
    public var deployedImages: [DeployedImage]

    public init(
        name: String,
        currentWeight: Double,
        desiredWeight: Double,
        currentInstanceCount: Int,
        desiredInstanceCount: Int,
        deployedImages: [DeployedImage]
    ) {
        self.name = name
        self.currentWeight = currentWeight
        self.desiredWeight = desiredWeight
        self.currentInstanceCount = currentInstanceCount
        self.desiredInstanceCount = desiredInstanceCount
        self.deployedImages = deployedImages
    }
}

/// An endpoint as the store keeps it.
public struct EndpointRecord: Sendable, Codable, Equatable {
    public var name: String
    public var arn: String
    public var configName: String
    public var status: EndpointStatus
    public var failureReason: String?
    public var creationTime: Date
    public var lastModifiedTime: Date
    /// What runs now (after the first successful deployment) or is being created.
    public var deployment: DeploymentSpec
    /// The deployment an update is bringing in, until it succeeds or fails.
    public var pending: DeploymentSpec?
    public var variants: [VariantState]
    /// Counts deployments, so that a late report about an older one is ignored.
    public var generation: Int

    public init(
        name: String,
        arn: String,
        configName: String,
        status: EndpointStatus,
        failureReason: String? = nil,
        creationTime: Date,
        lastModifiedTime: Date,
        deployment: DeploymentSpec,
        pending: DeploymentSpec? = nil,
        variants: [VariantState],
        generation: Int
    ) {
        self.name = name
        self.arn = arn
        self.configName = configName
        self.status = status
        self.failureReason = failureReason
        self.creationTime = creationTime
        self.lastModifiedTime = lastModifiedTime
        self.deployment = deployment
        self.pending = pending
        self.variants = variants
        self.generation = generation
    }

    /// The deployment the instances should match now: the pending one while an update runs.
    public var target: DeploymentSpec { pending ?? deployment }
}

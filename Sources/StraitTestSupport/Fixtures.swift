public import Foundation
public import StraitCore

/// Small builders for the values tests keep making: an account, fixed instants, variants, deployments and
/// endpoint records. Every default is a plain, valid value; tests override only what they are about.
public enum Fixtures {
    public static let account = AccountContext(region: "us-east-1", accountID: "123456789012")

    /// A fixed instant in whole seconds, so it survives every store's encoding exactly.
    public static let epoch = Date(timeIntervalSince1970: 1_700_000_000)

    /// `epoch` plus `seconds`.
    public static func time(_ seconds: Int) -> Date { epoch.addingTimeInterval(TimeInterval(seconds)) }

    public static func variant(
        _ name: String = "AllTraffic",
        model: String = "model-1",
        image: String = "strait/echo:latest",
        environment: [String: String] = [:],
        instanceCount: Int = 1,
        weight: Double = 1
    ) -> VariantSpec {
        VariantSpec(
            name: name,
            modelName: model,
            image: image,
            environment: environment,
            instanceType: "ml.m5.large",
            instanceCount: instanceCount,
            weight: weight
        )
    }

    public static func deployment(config: String = "config-1", variants: [VariantSpec]? = nil) -> DeploymentSpec {
        DeploymentSpec(configName: config, variants: variants ?? [variant()])
    }

    /// An endpoint record in `status` running `spec`, its variants at their desired counts and weights.
    public static func endpoint(
        _ name: String = "endpoint-1",
        status: EndpointStatus = .inService,
        spec: DeploymentSpec? = nil,
        pending: DeploymentSpec? = nil,
        generation: Int = 1,
        at time: Date = epoch
    ) -> EndpointRecord {
        let spec = spec ?? deployment()
        return EndpointRecord(
            name: name,
            arn: account.arn(.endpoint, name),
            configName: spec.configName,
            status: status,
            creationTime: time,
            lastModifiedTime: time,
            deployment: spec,
            pending: pending,
            variants: spec.variants.map {
                VariantState(
                    name: $0.name,
                    currentWeight: $0.weight,
                    desiredWeight: $0.weight,
                    currentInstanceCount: $0.instanceCount,
                    desiredInstanceCount: $0.instanceCount,
                    deployedImages: []
                )
            },
            generation: generation
        )
    }
}

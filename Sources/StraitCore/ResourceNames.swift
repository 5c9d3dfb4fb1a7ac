/// The account and region a Strait server speaks for, and the ARNs it gives resources.
public struct AccountContext: Sendable, Equatable {
    public let region: String
    public let accountID: String

    public init(region: String, accountID: String) {
        self.region = region
        self.accountID = accountID
    }

    /// SageMaker's ARN for a resource: the resource type and the name in lower case, as SageMaker writes it.
    public func arn(_ type: ResourceType, _ name: String) -> String {
        "arn:aws:sagemaker:\(region):\(accountID):\(type.rawValue)/\(name.lowercased())"
    }

    /// The resource an ARN of this account and region names, or nil if it is not one.
    public func parseARN(_ arn: String) -> (type: ResourceType, name: String)? {
        let prefix = "arn:aws:sagemaker:\(region):\(accountID):"
        guard arn.hasPrefix(prefix) else { return nil }
        let rest = arn.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/"), let type = ResourceType(rawValue: String(rest[..<slash])) else {
            return nil
        }
        let name = String(rest[rest.index(after: slash)...])
        guard !name.isEmpty, !name.contains("/") else { return nil }
        return (type, name)
    }
}

/// The kinds of SageMaker resource Strait keeps, by their ARN resource-type word.
public enum ResourceType: String, Sendable, CaseIterable {
    case model
    case endpointConfig = "endpoint-config"
    case endpoint
}

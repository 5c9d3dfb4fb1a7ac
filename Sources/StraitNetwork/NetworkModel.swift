public import StraitCore
public import StraitStore

/// A VPC: an IPv4 block and its DNS attributes.
public struct VPCRecord: Sendable, Equatable, Codable {
    public var id: String
    public var cidr: IPv4CIDR
    public var isDefault: Bool
    public var enableDnsSupport: Bool
    public var enableDnsHostnames: Bool
    public var tags: [Tag]
}

/// A subnet of a VPC, in one zone.
public struct SubnetRecord: Sendable, Equatable, Codable {
    public var id: String
    public var vpcID: String
    public var cidr: IPv4CIDR
    public var zone: String
    public var zoneID: String
    /// A default subnet: one of the configured zones' subnets, in the default VPC.
    public var isDefault: Bool
    public var tags: [Tag]
}

/// One ingress rule: a protocol and port range from a CIDR block or from members of a security group.
public struct IngressRule: Sendable, Equatable, Codable {
    public enum Source: Sendable, Equatable, Codable {
        case cidr(IPv4CIDR)
        case group(String)
    }

    /// `tcp`, `udp`, `icmp`, `-1` (all) or a protocol number, as EC2 keeps it.
    public var ipProtocol: String
    /// -1…-1 for protocols without ports.
    public var fromPort: Int
    public var toPort: Int
    public var source: Source
    public var description: String?

    /// Whether the rule allows a TCP connection from `address` (with the groups that address belongs to) to `port`.
    public func allowsTCP(from address: UInt32, groups: Set<String>, port: Int) -> Bool {
        switch ipProtocol {
        case "-1", "all": break
        case "tcp", "6": guard (fromPort...toPort).contains(port) else { return false }
        default: return false
        }
        switch source {
        case .cidr(let cidr): return cidr.contains(address)
        case .group(let id): return groups.contains(id)
        }
    }

    /// Same rule, ignoring the description (EC2 rejects duplicates and revokes by this).
    func sameRule(_ other: IngressRule) -> Bool {
        ipProtocol == other.ipProtocol && fromPort == other.fromPort && toPort == other.toPort
            && source == other.source
    }
}

/// A security group of a VPC. Egress is always "all traffic" (Strait makes no outbound connections on a group's
/// behalf), so only ingress is kept.
public struct SecurityGroupRecord: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var groupDescription: String
    public var vpcID: String
    public var ingress: [IngressRule]
    public var tags: [Tag]
}

extension SecurityGroupRecord {
    /// The `default` group every VPC gets: it admits its own members (as in AWS), and whatever `rules` adds.
    static func vpcDefault(of vpcID: String, alsoAdmitting rules: [IngressRule] = []) -> SecurityGroupRecord {
        let id = NetworkIDs.make("sg")
        return SecurityGroupRecord(
            id: id,
            name: "default",
            groupDescription: "default VPC security group",
            vpcID: vpcID,
            ingress: [IngressRule(ipProtocol: "-1", fromPort: -1, toPort: -1, source: .group(id))] + rules,
            tags: []
        )
    }
}

/// An interface VPC endpoint's network interface: one per subnet, with the address its listener binds.
public struct NetworkInterfaceRecord: Sendable, Equatable, Codable {
    public var id: String
    public var subnetID: String
    public var address: String
}

/// An interface VPC endpoint for SageMaker's runtime or API.
public struct VPCEndpointRecord: Sendable, Equatable, Codable {
    public var id: String
    public var vpcID: String
    public var serviceName: String
    public var interfaces: [NetworkInterfaceRecord]
    public var securityGroupIDs: [String]
    public var privateDnsEnabled: Bool
    public var policyDocument: String?
    public var creationTime: Double
    /// The random part of the endpoint's DNS names (`vpce-<id>-<suffix>.runtime.sagemaker…`).
    public var dnsSuffix: String
    public var tags: [Tag]
    /// The default VPC's runtime endpoint Strait makes at first start (its interfaces follow the configured zones).
    public var isDefault: Bool?

    public var subnetIDs: [String] { interfaces.map(\.subnetID) }
}

/// Everything Strait's EC2 API keeps: one document, written whole on every change.
public struct NetworkState: Sendable, Equatable, Codable {
    public var vpcs: [VPCRecord] = []
    public var subnets: [SubnetRecord] = []
    public var securityGroups: [SecurityGroupRecord] = []
    public var vpcEndpoints: [VPCEndpointRecord] = []

    public init() {}

    public func vpc(_ id: String) -> VPCRecord? { vpcs.first { $0.id == id } }
    public func subnet(_ id: String) -> SubnetRecord? { subnets.first { $0.id == id } }
    public func securityGroup(_ id: String) -> SecurityGroupRecord? { securityGroups.first { $0.id == id } }
    public var defaultVPC: VPCRecord? { vpcs.first { $0.isDefault } }

    /// The subnet whose block holds `address` (VPC blocks never overlap here, so there is at most one).
    public func subnet(holding address: UInt32) -> SubnetRecord? {
        subnets.first { $0.cidr.contains(address) }
    }

    /// The security groups the network interface at `address` carries (an interface endpoint's ENI).
    public func groups(ofInterfaceAt address: UInt32) -> Set<String> {
        var groups = Set<String>()
        for endpoint in vpcEndpoints
        where endpoint.interfaces.contains(where: { IPv4CIDR.parseAddress($0.address) == address }) {
            groups.formUnion(endpoint.securityGroupIDs)
        }
        return groups
    }
}

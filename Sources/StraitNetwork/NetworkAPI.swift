import Foundation
public import StraitCore
import Synchronization

/// Strait's EC2 API subset: VPCs, subnets, security groups, zones and interface VPC endpoints for SageMaker, kept
/// in one `NetworkState` document that is written to the store whole, inside the lock, before any change is seen.
///
/// Every accepted change is then handed to `onChange` (outside the lock), which re-opens listeners and republishes
/// the DNS and security-group snapshots.
public final class NetworkAPI: Sendable {
    public let region: String
    public let accountID: String
    public let zones: ZoneLayout
    /// Held while a change is made and written; readers never wait for it.
    private let state: Mutex<NetworkState>
    /// The last committed state, swapped in after each write: what readers (the accept path, DNS) see.
    private let published: Mutex<NetworkState>
    private let persist: @Sendable (NetworkState) throws(ServiceError) -> Void
    private let onChange: Mutex<(@Sendable (NetworkState) -> Void)?> = Mutex(nil)
    /// The subnets and security groups deployed endpoints' models use (they cannot be deleted while used).
    private let inUse: @Sendable () throws(ServiceError) -> (subnets: Set<String>, groups: Set<String>)
    private let clock: any WallClock
    /// Addresses an interface may not take: the regional listener's and the DNS server's.
    let reservedAddresses: Set<String>

    /// The services an interface endpoint can be made for, by name.
    public var services: [String: EndpointService] {
        [
            "com.amazonaws.\(region).sagemaker.runtime": EndpointService(
                name: "com.amazonaws.\(region).sagemaker.runtime",
                kind: .runtime,
                dnsLabel: "runtime.sagemaker",
                region: region
            ),
            "com.amazonaws.\(region).sagemaker.api": EndpointService(
                name: "com.amazonaws.\(region).sagemaker.api",
                kind: .api,
                dnsLabel: "api.sagemaker",
                region: region
            ),
        ]
    }

    /// Loads the stored network (creating the default VPC, subnets, security group and runtime endpoint at first
    /// start) and brings the default VPC's subnets in line with the configured zones.
    public init(
        region: String,
        accountID: String,
        zones: ZoneLayout,
        stored: NetworkState?,
        clock: any WallClock,
        reservedAddresses: Set<String> = [],
        persist: @escaping @Sendable (NetworkState) throws(ServiceError) -> Void,
        inUse: @escaping @Sendable () throws(ServiceError) -> (subnets: Set<String>, groups: Set<String>)
    ) throws(ServiceError) {
        self.reservedAddresses = reservedAddresses
        self.region = region
        self.accountID = accountID
        self.zones = zones
        self.clock = clock
        self.persist = persist
        self.inUse = inUse
        var network = stored ?? NetworkState()
        let before = network
        NetworkDefaults.ensure(
            &network,
            firstStart: stored == nil,
            zones: zones,
            region: region,
            now: clock.now().timeIntervalSince1970
        )
        if network != before || stored == nil { try persist(network) }
        state = Mutex(network)
        published = Mutex(network)
    }

    /// Where accepted changes go (listeners, DNS).
    public func setOnChange(_ handler: @escaping @Sendable (NetworkState) -> Void) {
        onChange.withLock { $0 = handler }
    }

    /// The current network: the last committed change (never waits for one being written).
    public var current: NetworkState { published.withLock { $0 } }

    /// Answers one EC2 action with its output document (botocore's member names).
    public func handle(action: String, input: JSONValue) throws(ServiceError) -> JSONValue {
        let operations = NetworkOperations(api: self, input: input)
        try operations.checkDryRun()
        switch action {
        case "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeAvailabilityZones",
            "DescribeVpcEndpointServices", "DescribeVpcEndpoints", "DescribeVpcAttribute":
            return try operations.describe(action, current)
        default:
            let (output, changed) = try state.withLock { network throws(ServiceError) -> (JSONValue, Bool) in
                var copy = network
                let output = try operations.mutate(action, &copy)
                guard copy != network else { return (output, false) }
                try persist(copy)
                network = copy
                published.withLock { $0 = copy }
                return (output, true)
            }
            // The handler reads `current`: an older change told late cannot publish an older state.
            if changed, let handler = onChange.withLock({ $0 }) { handler(current) }
            return output
        }
    }

    /// Checks a model's VpcConfig: every subnet and security group must exist, all in one VPC.
    public func validateVpcConfig(subnets: [String], securityGroups: [String]) throws(ServiceError) {
        let network = current
        var vpcs = Set<String>()
        for id in subnets {
            guard let subnet = network.subnet(id) else {
                throw ServiceError.validation("The subnet ID '\(id)' does not exist.")
            }
            vpcs.insert(subnet.vpcID)
        }
        for id in securityGroups {
            guard let group = network.securityGroup(id) else {
                throw ServiceError.validation("The security group '\(id)' does not exist.")
            }
            vpcs.insert(group.vpcID)
        }
        if vpcs.count > 1 {
            throw ServiceError.validation(
                "The subnets and security groups of VpcConfig must belong to one VPC; they belong to "
                    + "\(vpcs.sorted().joined(separator: ", "))."
            )
        }
    }

    /// The zone and block of each subnet (for placing instances in a model's VpcConfig subnets).
    public func placement(ofSubnet id: String) -> (zone: String, cidr: IPv4CIDR)? {
        current.subnet(id).map { ($0.zone, $0.cidr) }
    }

    var now: Double { clock.now().timeIntervalSince1970 }
    func usage() throws(ServiceError) -> (subnets: Set<String>, groups: Set<String>) { try inUse() }
}

/// An AWS service an interface endpoint can be made for.
public struct EndpointService: Sendable, Equatable {
    public enum Kind: String, Sendable { case runtime, api }
    public let name: String
    public let kind: Kind
    /// `runtime.sagemaker` or `api.sagemaker`.
    public let dnsLabel: String
    public let region: String

    /// The name private DNS answers: `runtime.sagemaker.<region>.amazonaws.com`.
    public var privateDnsName: String { "\(dnsLabel).\(region).amazonaws.com" }
    /// `runtime.sagemaker.<region>.vpce.amazonaws.com`.
    public var baseEndpointDnsName: String { "\(dnsLabel).\(region).vpce.amazonaws.com" }

    /// The endpoint's regional name and one name per zone.
    public func dnsNames(of endpoint: VPCEndpointRecord, zones: [String]) -> [String] {
        let base = "\(endpoint.id)-\(endpoint.dnsSuffix)"
        return ["\(base).\(baseEndpointDnsName)"] + zones.map { "\(base)-\($0).\(baseEndpointDnsName)" }
    }
}

/// The default VPC of an account, made at first start from the configured zones.
enum NetworkDefaults {
    /// At first start, makes the default VPC, its security group and runtime endpoint; at every start, makes the
    /// default VPC's default subnets the configured zones' (a deleted default VPC or endpoint stays deleted).
    static func ensure(_ network: inout NetworkState, firstStart: Bool, zones: ZoneLayout, region: String, now: Double)
    {
        let configured = zones.zones.flatMap { zone in zone.subnets.map { (zone, $0) } }
        if firstStart {
            let cidr = IPv4CIDR.covering(configured.map(\.1.cidr)) ?? IPv4CIDR("127.0.0.0/16")!
            let vpcID = NetworkIDs.make("vpc")
            network.vpcs.append(
                VPCRecord(
                    id: vpcID,
                    cidr: cidr,
                    isDefault: true,
                    enableDnsSupport: true,
                    enableDnsHostnames: true,
                    tags: []
                )
            )
            // Strait's departure from AWS: the default VPC's runtime endpoint (the zonal endpoints) takes calls from
            // anywhere that can reach it, as before there were security groups.
            let everyone = IngressRule(
                ipProtocol: "-1",
                fromPort: -1,
                toPort: -1,
                source: .cidr(IPv4CIDR("0.0.0.0/0")!),
                description: "Strait: the default VPC's endpoints accept every caller"
            )
            network.securityGroups.append(.vpcDefault(of: vpcID, alsoAdmitting: [everyone]))
        }
        guard let defaultVPC = network.defaultVPC,
            let vpcIndex = network.vpcs.firstIndex(where: { $0.id == defaultVPC.id })
        else { return }
        // The configured zones' subnets are the default VPC's default subnets.
        for (zone, subnet) in configured {
            let record = SubnetRecord(
                id: subnet.id,
                vpcID: defaultVPC.id,
                cidr: subnet.cidr,
                zone: zone.name,
                zoneID: zone.id,
                isDefault: true,
                tags: network.subnet(subnet.id)?.tags ?? []
            )
            if let index = network.subnets.firstIndex(where: { $0.id == subnet.id }) {
                network.subnets[index] = record
            } else {
                network.subnets.append(record)
            }
            if !network.vpcs[vpcIndex].cidr.covers(subnet.cidr),
                let wider = IPv4CIDR.covering([network.vpcs[vpcIndex].cidr, subnet.cidr])
            {
                network.vpcs[vpcIndex].cidr = wider
            }
        }
        // Default subnets no longer configured leave, with the endpoint interfaces in them.
        let configuredIDs = Set(configured.map(\.1.id))
        network.subnets.removeAll { $0.isDefault && !configuredIDs.contains($0.id) }
        let subnetIDs = Set(network.subnets.map(\.id))
        for index in network.vpcEndpoints.indices {
            network.vpcEndpoints[index].interfaces.removeAll { !subnetIDs.contains($0.subnetID) }
        }
        // The default runtime endpoint: made at first start; its interfaces sit on the first host address of the
        // first subnet of each zone (the zonal endpoints).
        if firstStart,
            let group = network.securityGroups.first(where: { $0.vpcID == defaultVPC.id && $0.name == "default" })
        {
            var endpoint = VPCEndpointRecord(
                id: NetworkIDs.make("vpce"),
                vpcID: defaultVPC.id,
                serviceName: "com.amazonaws.\(region).sagemaker.runtime",
                interfaces: [],
                securityGroupIDs: [group.id],
                privateDnsEnabled: true,
                policyDocument: nil,
                creationTime: now,
                dnsSuffix: NetworkIDs.suffix(),
                tags: []
            )
            endpoint.isDefault = true
            network.vpcEndpoints.append(endpoint)
        }
        if let index = network.vpcEndpoints.firstIndex(where: { $0.isDefault == true }) {
            let zoneOfSubnet = Dictionary(network.subnets.map { ($0.id, $0.zone) }, uniquingKeysWith: { a, _ in a })
            for zone in zones.zones {
                guard let first = zone.subnets.first, let address = first.cidr.address(at: 1) else { continue }
                let interface = NetworkInterfaceRecord(id: NetworkIDs.make("eni"), subnetID: first.id, address: address)
                if let existing = network.vpcEndpoints[index].interfaces.firstIndex(where: {
                    zoneOfSubnet[$0.subnetID] == zone.name
                }) {
                    network.vpcEndpoints[index].interfaces[existing].subnetID = first.id
                    network.vpcEndpoints[index].interfaces[existing].address = address
                } else {
                    network.vpcEndpoints[index].interfaces.append(interface)
                }
            }
        }
    }
}

/// Resource ids in EC2's form: a prefix and 17 hex digits.
enum NetworkIDs {
    static func make(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        let digit = String(UInt8.random(in: 0..<16, using: &generator), radix: 16)
        return "\(prefix)-\(digit)\(String(repeating: "0", count: 16 - hex.count))\(hex)"
    }

    /// Eight lower-case letters and digits, for DNS names.
    static func suffix() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<8).map { _ in alphabet.randomElement() ?? "a" })
    }
}

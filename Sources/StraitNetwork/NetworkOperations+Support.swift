import StraitCore
import StraitStore

// Input reading, lookups, filters, paging and the output documents of the EC2 actions.
extension NetworkOperations {
    // MARK: input

    func strings(_ member: String) -> [String] {
        (input[member]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    func required(_ member: String) throws(ServiceError) -> String {
        guard let value = input[member]?.stringValue else { throw EC2Errors.missingParameter(member) }
        return value
    }

    func checkDryRun() throws(ServiceError) {
        if input["DryRun"]?.boolValue == true {
            throw ServiceError(
                code: "DryRunOperation",
                message: "Request would have succeeded, but DryRun flag is set."
            )
        }
    }

    func existingVPC(_ id: String, _ network: NetworkState) throws(ServiceError) -> VPCRecord {
        guard id.hasPrefix("vpc-") else {
            throw ServiceError(code: "InvalidVpcID.Malformed", message: "Invalid id: \"\(id)\"")
        }
        guard let vpc = network.vpc(id) else {
            throw ServiceError(code: "InvalidVpcID.NotFound", message: "The vpc ID '\(id)' does not exist")
        }
        return vpc
    }

    /// The group named by GroupId, or by GroupName in the default VPC.
    func existingGroup(_ network: NetworkState) throws(ServiceError) -> SecurityGroupRecord {
        if let id = input["GroupId"]?.stringValue {
            guard id.hasPrefix("sg-") else {
                throw ServiceError(code: "InvalidGroupId.Malformed", message: "Invalid id: \"\(id)\"")
            }
            guard let group = network.securityGroup(id) else {
                throw ServiceError(code: "InvalidGroup.NotFound", message: "The security group '\(id)' does not exist")
            }
            return group
        }
        guard let name = input["GroupName"]?.stringValue else {
            throw EC2Errors.missingParameter("GroupId")
        }
        guard let group = network.securityGroups.first(where: { $0.name == name && $0.vpcID == network.defaultVPC?.id })
        else {
            throw ServiceError(
                code: "InvalidGroup.NotFound",
                message: "The security group '\(name)' does not exist in default VPC '\(network.defaultVPC?.id ?? "")'"
            )
        }
        return group
    }

    func defaultGroup(of vpcID: String, _ network: NetworkState) throws(ServiceError) -> String? {
        network.securityGroups.first { $0.vpcID == vpcID && $0.name == "default" }?.id
    }

    /// The records named by `ids` (all when none), each of which must exist.
    func selected<Record>(
        _ records: [Record],
        ids: [String],
        id: KeyPath<Record, String>,
        notFound code: String,
        message: (String) -> String
    ) throws(ServiceError) -> [Record] {
        guard !ids.isEmpty else { return records }
        for wanted in ids where !records.contains(where: { $0[keyPath: id] == wanted }) {
            throw ServiceError(code: code, message: message(wanted))
        }
        return records.filter { ids.contains($0[keyPath: id]) }
    }

    /// The records every filter matches: a record matches a filter when one of its values for the filter's name
    /// matches one of the filter's values (`*` and `?` are wildcards). `values` answers nil for an unknown name.
    func filtered<Record>(
        _ records: [Record],
        filters values: (Record, String) throws(ServiceError) -> [String]?
    ) throws(ServiceError) -> [Record] {
        let filters = (input["Filters"]?.arrayValue ?? []).map { filter in
            (filter["Name"]?.stringValue ?? "", (filter["Values"]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        for (_, values) in filters where values.count > 200 || values.contains(where: { $0.count > 255 }) {
            throw EC2Errors.invalidParameterValue("A filter takes at most 200 values of at most 255 characters each.")
        }
        var result: [Record] = []
        for record in records {
            var matches = true
            for (name, wanted) in filters {
                guard let have = try values(record, name) else {
                    throw EC2Errors.invalidParameterValue("The filter '\(name)' is invalid")
                }
                if !have.contains(where: { value in wanted.contains { Glob.matches($0, value) } }) {
                    matches = false
                    break
                }
            }
            if matches { result.append(record) }
        }
        return result
    }

    /// One page of `documents` by MaxResults and NextToken (an offset).
    func paged(_ documents: [JSONValue]) throws(ServiceError) -> Page {
        var start = 0
        if let token = input["NextToken"]?.stringValue {
            guard let offset = Int(token), (0...documents.count).contains(offset) else {
                throw ServiceError(code: "InvalidNextToken", message: "The token '\(token)' is invalid.")
            }
            start = offset
        }
        guard let limit = input["MaxResults"]?.intValue else {
            return Page(items: Array(documents[start...]), nextToken: nil)
        }
        guard (5...1000).contains(limit) else {
            throw EC2Errors.invalidParameterValue(
                "Value (\(limit)) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
            )
        }
        let end = min(documents.count, start + limit)
        return Page(items: Array(documents[start..<end]), nextToken: end < documents.count ? String(end) : nil)
    }

    func tagSpecification(for resourceType: String) throws(ServiceError) -> [Tag] {
        var tags: [Tag] = []
        for specification in input["TagSpecifications"]?.arrayValue ?? [] {
            let type = specification["ResourceType"]?.stringValue ?? ""
            guard type == resourceType else {
                throw EC2Errors.invalidParameterValue(
                    "'\(type)' is not a valid taggable resource type for this operation."
                )
            }
            for tag in specification["Tags"]?.arrayValue ?? [] {
                let key = tag["Key"]?.stringValue ?? ""
                let value = tag["Value"]?.stringValue ?? ""
                guard !key.isEmpty, key.count <= 128, value.count <= 256 else {
                    throw EC2Errors.invalidParameterValue("Tag keys must be 1–128 characters and values at most 256.")
                }
                tags = tags.merging([Tag(key: key, value: value)])
            }
        }
        guard tags.count <= 50 else {
            throw ServiceError(code: "TagLimitExceeded", message: "The maximum number of tags (50) was exceeded.")
        }
        return tags
    }

    /// The rules of an Authorize or Revoke call: IpPermissions, or the older top-level CidrIp form.
    func ingressRules(_ network: NetworkState, vpcID: String) throws(ServiceError) -> [IngressRule] {
        var permissions = input["IpPermissions"]?.arrayValue ?? []
        if input["CidrIp"] != nil || input["IpProtocol"] != nil || input["SourceSecurityGroupName"] != nil {
            var permission: [String: JSONValue] = [:]
            for key in ["IpProtocol", "FromPort", "ToPort"] { permission[key] = input[key] }
            if let cidr = input["CidrIp"] { permission["IpRanges"] = .array([.object(["CidrIp": cidr])]) }
            if let name = input["SourceSecurityGroupName"] {
                permission["UserIdGroupPairs"] = .array([.object(["GroupName": name])])
                permission["IpProtocol"] = permission["IpProtocol"] ?? .string("-1")
            }
            permissions.append(.object(permission))
        }
        var rules: [IngressRule] = []
        for permission in permissions {
            let given = permission["IpProtocol"]?.stringValue ?? ""
            let ipProtocol: String
            switch given.lowercased() {
            case "tcp", "6": ipProtocol = "tcp"
            case "udp", "17": ipProtocol = "udp"
            case "icmp", "1": ipProtocol = "icmp"
            case "-1", "all": ipProtocol = "-1"
            default:
                guard let number = Int(given), (0...255).contains(number) else {
                    throw EC2Errors.invalidParameterValue("Invalid value '\(given)' for IP protocol. Unknown protocol.")
                }
                ipProtocol = String(number)
            }
            var (from, to) = (-1, -1)
            if ipProtocol == "tcp" || ipProtocol == "udp" {
                guard let start = permission["FromPort"]?.intValue, let end = permission["ToPort"]?.intValue,
                    (0...65535).contains(start), (0...65535).contains(end), start <= end
                else {
                    throw EC2Errors.invalidParameterValue(
                        "Invalid value for portRange. Must specify both from and to ports (0–65535, from ≤ to) "
                            + "with TCP/UDP."
                    )
                }
                (from, to) = (start, end)
            } else if ipProtocol == "icmp" {
                (from, to) = (permission["FromPort"]?.intValue ?? -1, permission["ToPort"]?.intValue ?? -1)
            }
            if !(permission["Ipv6Ranges"]?.arrayValue ?? []).isEmpty
                || !(permission["PrefixListIds"]?.arrayValue ?? []).isEmpty
            {
                throw EC2Errors.invalidParameterValue(
                    "Strait's security groups take IPv4 ranges and security groups as sources, not IPv6 ranges or "
                        + "prefix lists."
                )
            }
            var sources: [(IngressRule.Source, String?)] = []
            for range in permission["IpRanges"]?.arrayValue ?? [] {
                let text = range["CidrIp"]?.stringValue ?? ""
                guard let cidr = IPv4CIDR.canonical(text) else {
                    throw EC2Errors.invalidParameterValue("CIDR block \(text) is malformed")
                }
                sources.append((.cidr(cidr), range["Description"]?.stringValue))
            }
            for pair in permission["UserIdGroupPairs"]?.arrayValue ?? [] {
                let group: SecurityGroupRecord?
                if let id = pair["GroupId"]?.stringValue {
                    group = network.securityGroup(id)
                    guard group != nil else {
                        throw ServiceError(
                            code: "InvalidGroup.NotFound",
                            message: "The security group '\(id)' does not exist"
                        )
                    }
                } else if let name = pair["GroupName"]?.stringValue {
                    group = network.securityGroups.first { $0.name == name && $0.vpcID == vpcID }
                    guard group != nil else {
                        throw ServiceError(
                            code: "InvalidGroup.NotFound",
                            message: "The security group '\(name)' does not exist in VPC '\(vpcID)'"
                        )
                    }
                } else {
                    throw EC2Errors.missingParameter("groupId")
                }
                guard let group, group.vpcID == vpcID else {
                    throw EC2Errors.invalidParameter(
                        "You have specified two resources that belong to different networks."
                    )
                }
                sources.append((.group(group.id), pair["Description"]?.stringValue))
            }
            guard !sources.isEmpty else {
                throw EC2Errors.invalidParameterValue(
                    "Each IP permission needs a source: an IpRanges CIDR or a UserIdGroupPairs security group."
                )
            }
            for (source, description) in sources {
                rules.append(
                    IngressRule(
                        ipProtocol: ipProtocol,
                        fromPort: from,
                        toPort: to,
                        source: source,
                        description: description
                    )
                )
            }
        }
        return rules
    }

    // MARK: interface endpoints

    func setSubnets(
        _ endpoint: inout VPCEndpointRecord,
        add: [String],
        remove: [String],
        _ network: NetworkState
    ) throws(ServiceError) {
        for id in remove {
            guard endpoint.subnetIDs.contains(id) else {
                throw EC2Errors.invalidParameter("The subnet '\(id)' is not a subnet of \(endpoint.id).")
            }
            endpoint.interfaces.removeAll { $0.subnetID == id }
        }
        for id in add {
            guard let subnet = network.subnet(id) else {
                throw ServiceError(code: "InvalidSubnetID.NotFound", message: "The subnet ID '\(id)' does not exist")
            }
            guard subnet.vpcID == endpoint.vpcID else {
                throw EC2Errors.invalidParameter(
                    "The subnet '\(id)' belongs to \(subnet.vpcID), not to the endpoint's VPC \(endpoint.vpcID)."
                )
            }
            guard !endpoint.interfaces.contains(where: { network.subnet($0.subnetID)?.zone == subnet.zone }) else {
                throw ServiceError(
                    code: "DuplicateSubnetsInSameZone",
                    message: "Found another VPC endpoint subnet in the availability zone of \(id). VPC endpoint "
                        + "subnets should be in different availability zones supported by the VPC endpoint service."
                )
            }
            let taken = Set(network.vpcEndpoints.flatMap { $0.interfaces.map(\.address) })
                .union(endpoint.interfaces.map(\.address)).union(api.reservedAddresses)
            guard let address = Self.freeAddress(in: subnet.cidr, taken: taken) else {
                throw ServiceError(
                    code: "InsufficientFreeAddressesInSubnet",
                    message: "The subnet '\(id)' has no free address for the endpoint's network interface."
                )
            }
            endpoint.interfaces.append(
                NetworkInterfaceRecord(id: NetworkIDs.make("eni"), subnetID: id, address: address)
            )
        }
        guard !endpoint.interfaces.isEmpty else {
            throw EC2Errors.invalidParameter("An Interface endpoint needs at least one subnet (SubnetIds).")
        }
    }

    /// The address an endpoint's interface takes: the lowest free one of the first hosts (instances start at the
    /// subnet's eleventh address), then from the top of the block down.
    static func freeAddress(in cidr: IPv4CIDR, taken: Set<String>) -> String? {
        guard cidr.size >= 4 else { return nil }
        let last = UInt32(truncatingIfNeeded: cidr.size - 2)
        let candidates = Array(UInt32(1)...min(9, last)) + (last > 9 ? Array((10...last).reversed()) : [])
        for offset in candidates {
            if let address = cidr.address(at: offset), !taken.contains(address) { return address }
        }
        return nil
    }

    func setGroups(
        _ endpoint: inout VPCEndpointRecord,
        add: [String],
        remove: [String],
        _ network: NetworkState
    ) throws(ServiceError) {
        for id in remove {
            guard endpoint.securityGroupIDs.contains(id) else {
                throw EC2Errors.invalidParameter("The security group '\(id)' is not a group of \(endpoint.id).")
            }
            endpoint.securityGroupIDs.removeAll { $0 == id }
        }
        for id in add where !endpoint.securityGroupIDs.contains(id) {
            guard let group = network.securityGroup(id) else {
                throw ServiceError(code: "InvalidGroup.NotFound", message: "The security group '\(id)' does not exist")
            }
            guard group.vpcID == endpoint.vpcID else {
                throw EC2Errors.invalidParameter("You have specified two resources that belong to different networks.")
            }
            endpoint.securityGroupIDs.append(id)
        }
        guard (1...5).contains(endpoint.securityGroupIDs.count) else {
            throw EC2Errors.invalidParameter("An Interface endpoint takes 1 to 5 security groups.")
        }
    }

    func setPrivateDns(
        _ endpoint: inout VPCEndpointRecord,
        _ enabled: Bool,
        _ network: NetworkState
    ) throws(ServiceError) {
        defer { endpoint.privateDnsEnabled = enabled }
        guard enabled, let vpc = network.vpc(endpoint.vpcID), let service = api.services[endpoint.serviceName] else {
            return
        }
        guard vpc.enableDnsSupport, vpc.enableDnsHostnames else {
            throw EC2Errors.invalidParameter(
                "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to "
                    + "true for \(vpc.id)"
            )
        }
        let conflict = network.vpcEndpoints.contains {
            $0.id != endpoint.id && $0.vpcID == vpc.id && $0.serviceName == endpoint.serviceName && $0.privateDnsEnabled
        }
        guard !conflict else {
            throw EC2Errors.invalidParameter(
                "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
                    + "\(service.privateDnsName) in the VPC \(vpc.id)"
            )
        }
    }

    // MARK: filters

    func tagValues(_ tags: [Tag], _ name: String) -> [String]? {
        if name == "tag-key" { return tags.map(\.key) }
        if name == "tag-value" { return tags.map(\.value) }
        if name.hasPrefix("tag:") {
            let key = String(name.dropFirst(4))
            return tags.filter { $0.key == key }.map(\.value)
        }
        return nil
    }

    func vpcFilter(_ vpc: VPCRecord, _ name: String) -> [String]? {
        switch name {
        case "vpc-id": [vpc.id]
        case "cidr", "cidr-block-association.cidr-block", "cidrBlock": [vpc.cidr.description]
        case "is-default", "isDefault": [String(vpc.isDefault)]
        case "state": ["available"]
        case "owner-id": [api.accountID]
        case "dhcp-options-id": ["default"]
        default: tagValues(vpc.tags, name)
        }
    }

    func subnetFilter(_ subnet: SubnetRecord, _ name: String) -> [String]? {
        switch name {
        case "subnet-id": [subnet.id]
        case "vpc-id", "vpcId": [subnet.vpcID]
        case "availability-zone", "availabilityZone": [subnet.zone]
        case "availability-zone-id", "availabilityZoneId": [subnet.zoneID]
        case "cidr", "cidr-block", "cidrBlock": [subnet.cidr.description]
        case "default-for-az", "defaultForAz": [String(subnet.isDefault)]
        case "state": ["available"]
        case "owner-id": [api.accountID]
        default: tagValues(subnet.tags, name)
        }
    }

    func groupFilter(_ group: SecurityGroupRecord, _ name: String) -> [String]? {
        switch name {
        case "group-id": [group.id]
        case "group-name": [group.name]
        case "description": [group.groupDescription]
        case "vpc-id": [group.vpcID]
        case "owner-id": [api.accountID]
        case "ip-permission.cidr":
            group.ingress.compactMap { rule in
                if case .cidr(let cidr) = rule.source { cidr.description } else { nil }
            }
        case "ip-permission.group-id":
            group.ingress.compactMap { rule in
                if case .group(let id) = rule.source { id } else { nil }
            }
        case "ip-permission.protocol": group.ingress.map(\.ipProtocol)
        default: tagValues(group.tags, name)
        }
    }

    func zoneFilter(_ zone: Zone, _ name: String) -> [String]? {
        switch name {
        case "zone-name": [zone.name]
        case "zone-id": [zone.id]
        case "state": ["available"]
        case "region-name", "group-name", "network-border-group": [api.region]
        case "zone-type": ["availability-zone"]
        case "opt-in-status": ["opt-in-not-required"]
        default: nil
        }
    }

    func endpointFilter(_ endpoint: VPCEndpointRecord, _ name: String) -> [String]? {
        switch name {
        case "vpc-endpoint-id": [endpoint.id]
        case "vpc-id": [endpoint.vpcID]
        case "service-name": [endpoint.serviceName]
        case "vpc-endpoint-state": ["available"]
        case "vpc-endpoint-type": ["Interface"]
        case "ip-address-type": ["ipv4"]
        default: tagValues(endpoint.tags, name)
        }
    }

    // MARK: documents

    func tagsDocument(_ tags: [Tag]) -> JSONValue {
        .array(tags.map { .object(["Key": .string($0.key), "Value": .string($0.value)]) })
    }

    func vpcDocument(_ vpc: VPCRecord, _ network: NetworkState) -> JSONValue {
        .object([
            "VpcId": .string(vpc.id),
            "CidrBlock": .string(vpc.cidr.description),
            "State": .string("available"),
            "DhcpOptionsId": .string("default"),
            "InstanceTenancy": .string("default"),
            "IsDefault": .bool(vpc.isDefault),
            "OwnerId": .string(api.accountID),
            "Tags": tagsDocument(vpc.tags),
            "CidrBlockAssociationSet": .array([
                .object([
                    "AssociationId": .string("vpc-cidr-assoc-" + vpc.id.dropFirst(4)),
                    "CidrBlock": .string(vpc.cidr.description),
                    "CidrBlockState": .object(["State": .string("associated")]),
                ])
            ]),
        ])
    }

    func subnetDocument(_ subnet: SubnetRecord, _ network: NetworkState) -> JSONValue {
        let interfaces = network.vpcEndpoints.reduce(0) { count, endpoint in
            count + endpoint.interfaces.filter { $0.subnetID == subnet.id }.count
        }
        return .object([
            "SubnetId": .string(subnet.id),
            "VpcId": .string(subnet.vpcID),
            "CidrBlock": .string(subnet.cidr.description),
            "AvailabilityZone": .string(subnet.zone),
            "AvailabilityZoneId": .string(subnet.zoneID),
            "AvailableIpAddressCount": .number(Double(max(0, Int(subnet.cidr.size) - 5 - interfaces))),
            "DefaultForAz": .bool(subnet.isDefault),
            "MapPublicIpOnLaunch": .bool(false),
            "AssignIpv6AddressOnCreation": .bool(false),
            "State": .string("available"),
            "OwnerId": .string(api.accountID),
            "SubnetArn": .string("arn:aws:ec2:\(api.region):\(api.accountID):subnet/\(subnet.id)"),
            "Ipv6CidrBlockAssociationSet": .array([]),
            "Tags": tagsDocument(subnet.tags),
        ])
    }

    func groupDocument(_ group: SecurityGroupRecord) -> JSONValue {
        var permissions: [JSONValue] = []
        var keys: [String] = []
        var byKey: [String: [IngressRule]] = [:]
        for rule in group.ingress {
            let key = "\(rule.ipProtocol)|\(rule.fromPort)|\(rule.toPort)"
            if byKey[key] == nil { keys.append(key) }
            byKey[key, default: []].append(rule)
        }
        for key in keys {
            guard let rules = byKey[key], let first = rules.first else { continue }
            var permission: [String: JSONValue] = [
                "IpProtocol": .string(first.ipProtocol),
                "IpRanges": .array(
                    rules.compactMap { rule -> JSONValue? in
                        guard case .cidr(let cidr) = rule.source else { return nil }
                        var range: [String: JSONValue] = ["CidrIp": .string(cidr.description)]
                        if let description = rule.description { range["Description"] = .string(description) }
                        return .object(range)
                    }
                ),
                "UserIdGroupPairs": .array(
                    rules.compactMap { rule -> JSONValue? in
                        guard case .group(let id) = rule.source else { return nil }
                        var pair: [String: JSONValue] = ["GroupId": .string(id), "UserId": .string(api.accountID)]
                        if let description = rule.description { pair["Description"] = .string(description) }
                        return .object(pair)
                    }
                ),
                "Ipv6Ranges": .array([]),
                "PrefixListIds": .array([]),
            ]
            if first.ipProtocol != "-1" {
                permission["FromPort"] = .number(Double(first.fromPort))
                permission["ToPort"] = .number(Double(first.toPort))
            }
            permissions.append(.object(permission))
        }
        return .object([
            "GroupId": .string(group.id),
            "GroupName": .string(group.name),
            "Description": .string(group.groupDescription),
            "VpcId": .string(group.vpcID),
            "OwnerId": .string(api.accountID),
            "SecurityGroupArn": .string("arn:aws:ec2:\(api.region):\(api.accountID):security-group/\(group.id)"),
            "IpPermissions": .array(permissions),
            "IpPermissionsEgress": .array([
                .object([
                    "IpProtocol": .string("-1"),
                    "IpRanges": .array([.object(["CidrIp": .string("0.0.0.0/0")])]),
                    "UserIdGroupPairs": .array([]),
                    "Ipv6Ranges": .array([]),
                    "PrefixListIds": .array([]),
                ])
            ]),
            "Tags": tagsDocument(group.tags),
        ])
    }

    func zoneDocument(_ zone: Zone) -> JSONValue {
        .object([
            "ZoneName": .string(zone.name),
            "ZoneId": .string(zone.id),
            "State": .string("available"),
            "RegionName": .string(api.region),
            "ZoneType": .string("availability-zone"),
            "OptInStatus": .string("opt-in-not-required"),
            "GroupName": .string(api.region),
            "NetworkBorderGroup": .string(api.region),
            "Messages": .array([]),
        ])
    }

    func serviceDocument(_ service: EndpointService) -> JSONValue {
        .object([
            "ServiceName": .string(service.name),
            "ServiceId": .string("vpce-svc-strait-\(service.kind.rawValue)"),
            "ServiceType": .array([.object(["ServiceType": .string("Interface")])]),
            "AvailabilityZones": .array(api.zones.zones.map { .string($0.name) }),
            "Owner": .string("amazon"),
            "BaseEndpointDnsNames": .array([.string(service.baseEndpointDnsName)]),
            "PrivateDnsName": .string(service.privateDnsName),
            "PrivateDnsNames": .array([.object(["PrivateDnsName": .string(service.privateDnsName)])]),
            "VpcEndpointPolicySupported": .bool(true),
            "AcceptanceRequired": .bool(false),
            "ManagesVpcEndpoints": .bool(false),
            "PrivateDnsNameVerificationState": .string("verified"),
            "SupportedIpAddressTypes": .array([.string("ipv4")]),
        ])
    }

    func endpointDocument(_ endpoint: VPCEndpointRecord, _ network: NetworkState) -> JSONValue {
        let zones = endpoint.interfaces.compactMap { network.subnet($0.subnetID)?.zone }
        var entries: [JSONValue] = []
        if let service = api.services[endpoint.serviceName] {
            entries = service.dnsNames(of: endpoint, zones: zones).map {
                .object(["DnsName": .string($0), "HostedZoneId": .string("Z7HUB22UULQXV")])
            }
            if endpoint.privateDnsEnabled {
                entries.append(
                    .object(["DnsName": .string(service.privateDnsName), "HostedZoneId": .string("ZSTRAITPRIVATE")])
                )
            }
        }
        let policy =
            endpoint.policyDocument
            ?? #"{"Statement":[{"Action":"*","Effect":"Allow","Principal":"*","Resource":"*"}]}"#
        return .object([
            "VpcEndpointId": .string(endpoint.id),
            "VpcEndpointType": .string("Interface"),
            "VpcId": .string(endpoint.vpcID),
            "ServiceName": .string(endpoint.serviceName),
            "State": .string("available"),
            "PolicyDocument": .string(policy),
            "RouteTableIds": .array([]),
            "SubnetIds": .array(endpoint.subnetIDs.map { .string($0) }),
            "Groups": .array(
                endpoint.securityGroupIDs.map { id in
                    .object([
                        "GroupId": .string(id), "GroupName": .string(network.securityGroup(id)?.name ?? ""),
                    ])
                }
            ),
            "IpAddressType": .string("ipv4"),
            "DnsOptions": .object(["DnsRecordIpType": .string("ipv4")]),
            "PrivateDnsEnabled": .bool(endpoint.privateDnsEnabled),
            "RequesterManaged": .bool(false),
            "NetworkInterfaceIds": .array(endpoint.interfaces.map { .string($0.id) }),
            "DnsEntries": .array(entries),
            "CreationTimestamp": .number(endpoint.creationTime),
            "Tags": tagsDocument(endpoint.tags),
            "OwnerId": .string(api.accountID),
        ])
    }
}

/// A page of a Describe call's results.
struct Page {
    let items: [JSONValue]
    let nextToken: String?

    func merging(key: String) -> [String: JSONValue] {
        var document: [String: JSONValue] = [key: .array(items)]
        if let nextToken { document["NextToken"] = .string(nextToken) }
        return document
    }
}

extension IngressRule {
    /// The rule's source as EC2's duplicate message names it.
    var peer: String {
        switch source {
        case .cidr(let cidr): cidr.description
        case .group(let id): id
        }
    }

    var protocolName: String { ipProtocol == "-1" ? "ALL" : ipProtocol.uppercased() }
}

extension EC2Errors {
    static func invalidParameterCombination(_ message: String) -> ServiceError {
        ServiceError(code: "InvalidParameterCombination", message: message)
    }
}

/// EC2 filter values: `*` matches any run of characters, `?` any one.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern)
        let t = Array(text)
        // previous[j]: whether p[..<i] matches t[..<j]; O(|p|·|t|), no recursion.
        var previous = [Bool](repeating: false, count: t.count + 1)
        previous[0] = true
        for i in 1...max(p.count, 1) where i <= p.count {
            var current = [Bool](repeating: false, count: t.count + 1)
            current[0] = previous[0] && p[i - 1] == "*"
            for j in stride(from: 1, through: t.count, by: 1) {
                switch p[i - 1] {
                case "*": current[j] = previous[j] || current[j - 1]
                case "?": current[j] = previous[j - 1]
                default: current[j] = previous[j - 1] && p[i - 1] == t[j - 1]
                }
            }
            previous = current
        }
        return previous[t.count]
    }
}

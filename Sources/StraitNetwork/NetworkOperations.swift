import StraitCore
import StraitStore

/// The EC2 actions over a `NetworkState`: reads from the input document (botocore's member names), writes output
/// documents, throws EC2's error codes and wording.
struct NetworkOperations {
    let api: NetworkAPI
    let input: JSONValue

    init(api: NetworkAPI, input: JSONValue) {
        self.api = api
        self.input = input
    }

    // MARK: reads

    func describe(_ action: String, _ network: NetworkState) throws(ServiceError) -> JSONValue {
        switch action {
        case "DescribeVpcs":
            let vpcs = try selected(network.vpcs, ids: strings("VpcIds"), id: \.id, notFound: "InvalidVpcID.NotFound") {
                "The vpc ID '\($0)' does not exist"
            }
            let page = try paged(try filtered(vpcs, filters: vpcFilter).map { vpcDocument($0, network) })
            return .object(page.merging(key: "Vpcs"))
        case "DescribeSubnets":
            let subnets = try selected(
                network.subnets,
                ids: strings("SubnetIds"),
                id: \.id,
                notFound: "InvalidSubnetID.NotFound"
            ) { "The subnet ID '\($0)' does not exist" }
            let page = try paged(try filtered(subnets, filters: subnetFilter).map { subnetDocument($0, network) })
            return .object(page.merging(key: "Subnets"))
        case "DescribeSecurityGroups":
            var groups = try selected(
                network.securityGroups,
                ids: strings("GroupIds"),
                id: \.id,
                notFound: "InvalidGroup.NotFound"
            ) { "The security group '\($0)' does not exist" }
            let names = strings("GroupNames")
            if !names.isEmpty {
                // Names are looked up in the default VPC, as EC2 does.
                for name in names
                where !groups.contains(where: { $0.name == name && $0.vpcID == network.defaultVPC?.id }) {
                    throw ServiceError(
                        code: "InvalidGroup.NotFound",
                        message: "The security group '\(name)' does not exist in default VPC "
                            + "'\(network.defaultVPC?.id ?? "")'"
                    )
                }
                groups = groups.filter { names.contains($0.name) && $0.vpcID == network.defaultVPC?.id }
            }
            let page = try paged(try filtered(groups, filters: groupFilter).map(groupDocument))
            return .object(page.merging(key: "SecurityGroups"))
        case "DescribeAvailabilityZones":
            var zones = api.zones.zones
            let names = strings("ZoneNames")
            let ids = strings("ZoneIds")
            for name in names where !zones.contains(where: { $0.name == name }) {
                throw EC2Errors.invalidParameterValue("The zone '\(name)' does not exist.")
            }
            for id in ids where !zones.contains(where: { $0.id == id }) {
                throw EC2Errors.invalidParameterValue("The zone ID '\(id)' does not exist.")
            }
            if !names.isEmpty || !ids.isEmpty {
                zones = zones.filter { names.contains($0.name) || ids.contains($0.id) }
            }
            let documents = try filtered(zones, filters: zoneFilter).map(zoneDocument)
            return .object(["AvailabilityZones": .array(documents)])
        case "DescribeVpcEndpointServices":
            let all = api.services.values.sorted { $0.name < $1.name }
            let names = strings("ServiceNames")
            for name in names where api.services[name] == nil {
                throw ServiceError(
                    code: "InvalidServiceName",
                    message: "The Vpc Endpoint Service '\(name)' does not exist"
                )
            }
            let services = try filtered(names.isEmpty ? all : all.filter { names.contains($0.name) }) {
                service,
                name throws(ServiceError) -> [String]? in
                switch name {
                case "service-name": [service.name]
                case "service-type": ["Interface"]
                case "service-region": [service.region]
                default: nil
                }
            }
            return .object([
                "ServiceNames": .array(services.map { .string($0.name) }),
                "ServiceDetails": .array(services.map(serviceDocument)),
            ])
        case "DescribeVpcEndpoints":
            let endpoints = try selected(
                network.vpcEndpoints,
                ids: strings("VpcEndpointIds"),
                id: \.id,
                notFound: "InvalidVpcEndpointId.NotFound"
            ) { "The Vpc Endpoint Id '\($0)' does not exist" }
            let page = try paged(
                try filtered(endpoints, filters: endpointFilter).map { endpointDocument($0, network) }
            )
            return .object(page.merging(key: "VpcEndpoints"))
        case "DescribeVpcAttribute":
            let vpc = try existingVPC(try required("VpcId"), network)
            let attribute = try required("Attribute")
            let key: String
            let value: Bool
            switch attribute {
            case "enableDnsSupport": (key, value) = ("EnableDnsSupport", vpc.enableDnsSupport)
            case "enableDnsHostnames": (key, value) = ("EnableDnsHostnames", vpc.enableDnsHostnames)
            case "enableNetworkAddressUsageMetrics": (key, value) = ("EnableNetworkAddressUsageMetrics", false)
            default:
                throw EC2Errors.invalidParameterValue("Value (\(attribute)) for parameter attribute is invalid.")
            }
            return .object(["VpcId": .string(vpc.id), key: .object(["Value": .bool(value)])])
        default:
            throw ServiceError(
                code: "InvalidAction",
                message: "The action \(action) is not valid for this web service."
            )
        }
    }

    // MARK: changes

    func mutate(_ action: String, _ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        switch action {
        case "CreateVpc": return try createVpc(&network)
        case "DeleteVpc": return try deleteVpc(&network)
        case "ModifyVpcAttribute": return try modifyVpcAttribute(&network)
        case "CreateSubnet": return try createSubnet(&network)
        case "DeleteSubnet": return try deleteSubnet(&network)
        case "CreateSecurityGroup": return try createSecurityGroup(&network)
        case "DeleteSecurityGroup": return try deleteSecurityGroup(&network)
        case "AuthorizeSecurityGroupIngress": return try changeIngress(&network, authorize: true)
        case "RevokeSecurityGroupIngress": return try changeIngress(&network, authorize: false)
        case "CreateVpcEndpoint": return try createVpcEndpoint(&network)
        case "ModifyVpcEndpoint": return try modifyVpcEndpoint(&network)
        case "DeleteVpcEndpoints": return try deleteVpcEndpoints(&network)
        case "CreateTags": return try changeTags(&network, add: true)
        case "DeleteTags": return try changeTags(&network, add: false)
        default:
            throw ServiceError(
                code: "InvalidAction",
                message: "The action \(action) is not valid for this web service."
            )
        }
    }

    private func createVpc(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        guard let text = input["CidrBlock"]?.stringValue else {
            throw EC2Errors.missingParameter("cidrBlock")
        }
        guard let cidr = IPv4CIDR.canonical(text) else {
            throw EC2Errors.invalidParameterValue(
                "Value (\(text)) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            )
        }
        guard (16...28).contains(cidr.prefixLength) else {
            throw ServiceError(code: "InvalidVpc.Range", message: "The CIDR '\(text)' is invalid.")
        }
        if let other = network.vpcs.first(where: { $0.cidr.overlaps(cidr) }) {
            throw EC2Errors.invalidParameterValue(
                "The CIDR '\(cidr)' overlaps \(other.id) (\(other.cidr)): Strait's VPCs share this machine's "
                    + "address space, so their blocks may not overlap."
            )
        }
        let vpc = VPCRecord(
            id: NetworkIDs.make("vpc"),
            cidr: cidr,
            isDefault: false,
            enableDnsSupport: true,
            enableDnsHostnames: false,
            tags: try tagSpecification(for: "vpc")
        )
        network.vpcs.append(vpc)
        network.securityGroups.append(.vpcDefault(of: vpc.id))
        return .object(["Vpc": vpcDocument(vpc, network)])
    }

    private func deleteVpc(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let vpc = try existingVPC(try required("VpcId"), network)
        let dependent =
            network.subnets.contains { $0.vpcID == vpc.id }
            || network.vpcEndpoints.contains { $0.vpcID == vpc.id }
            || network.securityGroups.contains { $0.vpcID == vpc.id && $0.name != "default" }
        guard !dependent else {
            throw EC2Errors.dependencyViolation("The vpc '\(vpc.id)' has dependencies and cannot be deleted.")
        }
        network.securityGroups.removeAll { $0.vpcID == vpc.id }
        network.vpcs.removeAll { $0.id == vpc.id }
        return .object(["Return": .bool(true)])
    }

    private func modifyVpcAttribute(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let vpc = try existingVPC(try required("VpcId"), network)
        guard let index = network.vpcs.firstIndex(where: { $0.id == vpc.id }) else { return .object([:]) }
        let support = input["EnableDnsSupport"]?["Value"]?.boolValue
        let hostnames = input["EnableDnsHostnames"]?["Value"]?.boolValue
        let metrics = input["EnableNetworkAddressUsageMetrics"]?["Value"]?.boolValue
        guard [support, hostnames, metrics].compactMap({ $0 }).count == 1 else {
            throw EC2Errors.invalidParameterCombination(
                "Exactly one of EnableDnsSupport, EnableDnsHostnames and EnableNetworkAddressUsageMetrics must be given."
            )
        }
        if let support { network.vpcs[index].enableDnsSupport = support }
        if let hostnames {
            guard !hostnames || network.vpcs[index].enableDnsSupport else {
                throw EC2Errors.invalidParameterValue(
                    "Cannot enable DNS hostnames for \(vpc.id): the VPC does not have DNS support enabled."
                )
            }
            network.vpcs[index].enableDnsHostnames = hostnames
        }
        if metrics == true {
            throw EC2Errors.invalidParameterValue("Strait does not keep network address usage metrics.")
        }
        return .object([:])
    }

    private func createSubnet(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let vpc = try existingVPC(try required("VpcId"), network)
        let text = try required("CidrBlock")
        guard let cidr = IPv4CIDR.canonical(text) else {
            throw EC2Errors.invalidParameterValue(
                "Value (\(text)) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            )
        }
        guard vpc.cidr.covers(cidr), (16...28).contains(cidr.prefixLength) else {
            throw ServiceError(code: "InvalidSubnet.Range", message: "The CIDR '\(text)' is invalid.")
        }
        if network.subnets.contains(where: { $0.cidr.overlaps(cidr) }) {
            throw ServiceError(
                code: "InvalidSubnet.Conflict",
                message: "The CIDR '\(text)' conflicts with another subnet"
            )
        }
        let zone: Zone
        let known = api.zones.zones.map(\.name).joined(separator: ", ")
        if let name = input["AvailabilityZone"]?.stringValue {
            guard let found = api.zones.zones.first(where: { $0.name == name }) else {
                throw EC2Errors.invalidParameterValue(
                    "Value (\(name)) for parameter availabilityZone is invalid. Subnets can currently only be "
                        + "created in the following availability zones: \(known)."
                )
            }
            if let id = input["AvailabilityZoneId"]?.stringValue, id != found.id {
                throw EC2Errors.invalidParameterCombination(
                    "The availability zone \(name) and the availability zone ID \(id) name different zones."
                )
            }
            zone = found
        } else if let id = input["AvailabilityZoneId"]?.stringValue {
            guard let found = api.zones.zones.first(where: { $0.id == id }) else {
                throw EC2Errors.invalidParameterValue(
                    "Value (\(id)) for parameter availabilityZoneId is invalid. Subnets can currently only be "
                        + "created in the following availability zones: \(known)."
                )
            }
            zone = found
        } else {
            // EC2 picks a zone; Strait picks the one with the fewest of this VPC's subnets.
            let counts = api.zones.zones.map { zone in
                (zone, network.subnets.filter { $0.vpcID == vpc.id && $0.zone == zone.name }.count)
            }
            guard let least = counts.min(by: { $0.1 < $1.1 })?.0 else {
                throw EC2Errors.invalidParameterValue("No availability zone is configured.")
            }
            zone = least
        }
        let subnet = SubnetRecord(
            id: NetworkIDs.make("subnet"),
            vpcID: vpc.id,
            cidr: cidr,
            zone: zone.name,
            zoneID: zone.id,
            isDefault: false,
            tags: try tagSpecification(for: "subnet")
        )
        network.subnets.append(subnet)
        return .object(["Subnet": subnetDocument(subnet, network)])
    }

    private func deleteSubnet(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let id = try required("SubnetId")
        guard let subnet = network.subnet(id) else {
            throw ServiceError(code: "InvalidSubnetID.NotFound", message: "The subnet ID '\(id)' does not exist")
        }
        let usedByEndpoint = network.vpcEndpoints.contains { $0.subnetIDs.contains(id) }
        guard !usedByEndpoint, try !api.usage().subnets.contains(id) else {
            throw EC2Errors.dependencyViolation("The subnet '\(subnet.id)' has dependencies and cannot be deleted.")
        }
        network.subnets.removeAll { $0.id == id }
        return .object([:])
    }

    private func createSecurityGroup(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let name = try required("GroupName")
        let description = try required("Description")
        guard !name.isEmpty, name.count <= 255, !name.hasPrefix("sg-") else {
            throw EC2Errors.invalidParameterValue("Invalid security group name: '\(name)'.")
        }
        guard description.count <= 255 else {
            throw EC2Errors.invalidParameterValue("The description is longer than 255 characters.")
        }
        guard name.lowercased() != "default" else {
            throw EC2Errors.invalidParameterValue("Cannot use reserved security group name: default")
        }
        let vpcID: String
        if let given = input["VpcId"]?.stringValue {
            vpcID = try existingVPC(given, network).id
        } else if let vpc = network.defaultVPC {
            vpcID = vpc.id
        } else {
            throw ServiceError(code: "VPCIdNotSpecified", message: "No default VPC for this user")
        }
        // Group names are unique per VPC regardless of case.
        if network.securityGroups.contains(where: { $0.vpcID == vpcID && $0.name.lowercased() == name.lowercased() }) {
            throw ServiceError(
                code: "InvalidGroup.Duplicate",
                message: "The security group '\(name)' already exists for VPC '\(vpcID)'"
            )
        }
        let group = SecurityGroupRecord(
            id: NetworkIDs.make("sg"),
            name: name,
            groupDescription: description,
            vpcID: vpcID,
            ingress: [],
            tags: try tagSpecification(for: "security-group")
        )
        network.securityGroups.append(group)
        return .object([
            "GroupId": .string(group.id),
            "Tags": tagsDocument(group.tags),
            "SecurityGroupArn": .string(
                "arn:aws:ec2:\(api.region):\(api.accountID):security-group/\(group.id)"
            ),
        ])
    }

    private func deleteSecurityGroup(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let group = try existingGroup(network)
        guard group.name != "default" else {
            throw ServiceError(
                code: "CannotDelete",
                message: "the specified group: \"\(group.id)\" name: \"default\" cannot be deleted by a user"
            )
        }
        let usedByModels = try api.usage().groups.contains(group.id)
        let referenced =
            usedByModels || network.vpcEndpoints.contains { $0.securityGroupIDs.contains(group.id) }
            || network.securityGroups.contains { other in
                other.id != group.id && other.ingress.contains { $0.source == .group(group.id) }
            }
        guard !referenced else {
            throw EC2Errors.dependencyViolation("resource \(group.id) has a dependent object")
        }
        network.securityGroups.removeAll { $0.id == group.id }
        return .object(["Return": .bool(true), "GroupId": .string(group.id)])
    }

    private func changeIngress(_ network: inout NetworkState, authorize: Bool) throws(ServiceError) -> JSONValue {
        let group = try existingGroup(network)
        guard let index = network.securityGroups.firstIndex(where: { $0.id == group.id }) else {
            return .object([:])
        }
        let rules = try ingressRules(network, vpcID: group.vpcID)
        guard !rules.isEmpty else {
            throw EC2Errors.missingParameter("ipPermissions")
        }
        var ingress = network.securityGroups[index].ingress
        for rule in rules {
            let existing = ingress.firstIndex { $0.sameRule(rule) }
            if authorize {
                guard existing == nil else {
                    throw ServiceError(
                        code: "InvalidPermission.Duplicate",
                        message: "the specified rule \"peer: \(rule.peer), \(rule.protocolName), from port: "
                            + "\(rule.fromPort), to port: \(rule.toPort), ALLOW\" already exists"
                    )
                }
                ingress.append(rule)
            } else {
                guard let existing else {
                    throw ServiceError(
                        code: "InvalidPermission.NotFound",
                        message: "The specified rule does not exist in this security group."
                    )
                }
                ingress.remove(at: existing)
            }
        }
        network.securityGroups[index].ingress = ingress
        return .object(["Return": .bool(true)])
    }

    private func createVpcEndpoint(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let vpc = try existingVPC(try required("VpcId"), network)
        let serviceName = try required("ServiceName")
        guard let service = api.services[serviceName] else {
            throw ServiceError(
                code: "InvalidServiceName",
                message: "The Vpc Endpoint Service '\(serviceName)' does not exist"
            )
        }
        let type = input["VpcEndpointType"]?.stringValue ?? "Gateway"
        guard type == "Interface" else {
            throw EC2Errors.invalidParameter(
                "The Vpc Endpoint Service '\(serviceName)' does not support endpoint type '\(type)'. "
                    + "Supported: Interface."
            )
        }
        let subnetIDs = strings("SubnetIds")
        let groupIDs = strings("SecurityGroupIds")
        let privateDns = input["PrivateDnsEnabled"]?.boolValue ?? true
        var endpoint = VPCEndpointRecord(
            id: NetworkIDs.make("vpce"),
            vpcID: vpc.id,
            serviceName: service.name,
            interfaces: [],
            securityGroupIDs: [],
            privateDnsEnabled: false,
            policyDocument: input["PolicyDocument"]?.stringValue,
            creationTime: api.now,
            dnsSuffix: NetworkIDs.suffix(),
            tags: try tagSpecification(for: "vpc-endpoint")
        )
        try setSubnets(&endpoint, add: subnetIDs, remove: [], network)
        let groups = groupIDs.isEmpty ? try defaultGroup(of: vpc.id, network).map { [$0] } ?? [] : groupIDs
        try setGroups(&endpoint, add: groups, remove: [], network)
        try setPrivateDns(&endpoint, privateDns, network)
        network.vpcEndpoints.append(endpoint)
        return .object(["VpcEndpoint": endpointDocument(endpoint, network)])
    }

    private func modifyVpcEndpoint(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let id = try required("VpcEndpointId")
        guard let index = network.vpcEndpoints.firstIndex(where: { $0.id == id }) else {
            throw ServiceError(
                code: "InvalidVpcEndpointId.NotFound",
                message: "The Vpc Endpoint Id '\(id)' does not exist"
            )
        }
        var endpoint = network.vpcEndpoints[index]
        try setSubnets(&endpoint, add: strings("AddSubnetIds"), remove: strings("RemoveSubnetIds"), network)
        try setGroups(
            &endpoint,
            add: strings("AddSecurityGroupIds"),
            remove: strings("RemoveSecurityGroupIds"),
            network
        )
        if let privateDns = input["PrivateDnsEnabled"]?.boolValue {
            try setPrivateDns(&endpoint, privateDns, network)
        }
        if input["ResetPolicy"]?.boolValue == true { endpoint.policyDocument = nil }
        if let policy = input["PolicyDocument"]?.stringValue { endpoint.policyDocument = policy }
        network.vpcEndpoints[index] = endpoint
        return .object(["Return": .bool(true)])
    }

    private func deleteVpcEndpoints(_ network: inout NetworkState) throws(ServiceError) -> JSONValue {
        let ids = strings("VpcEndpointIds")
        guard !ids.isEmpty else { throw EC2Errors.missingParameter("VpcEndpointId") }
        var unsuccessful: [JSONValue] = []
        for id in ids {
            if network.vpcEndpoints.contains(where: { $0.id == id }) {
                network.vpcEndpoints.removeAll { $0.id == id }
            } else {
                unsuccessful.append(
                    .object([
                        "ResourceId": .string(id),
                        "Error": .object([
                            "Code": .string("InvalidVpcEndpoint.NotFound"),
                            "Message": .string("The Vpc Endpoint Id '\(id)' does not exist"),
                        ]),
                    ])
                )
            }
        }
        return .object(["Unsuccessful": .array(unsuccessful)])
    }

    private func changeTags(_ network: inout NetworkState, add: Bool) throws(ServiceError) -> JSONValue {
        let resources = strings("Resources")
        guard !resources.isEmpty else { throw EC2Errors.missingParameter("resourceIdSet") }
        let tags = (input["Tags"]?.arrayValue ?? []).map { tag in
            Tag(key: tag["Key"]?.stringValue ?? "", value: tag["Value"]?.stringValue ?? "")
        }
        if add, tags.isEmpty { throw EC2Errors.missingParameter("tagSet") }
        for tag in tags where tag.key.isEmpty || tag.key.count > 128 || tag.value.count > 256 {
            throw EC2Errors.invalidParameterValue("Tag keys must be 1–128 characters and values at most 256.")
        }
        func apply(_ existing: inout [Tag]) {
            if add {
                existing = existing.merging(tags)
            } else if input["Tags"] == nil {
                existing = []
            } else {
                // A tag given without a value deletes the key whatever its value; with a value, only that pair.
                let given = input["Tags"]?.arrayValue ?? []
                existing.removeAll { current in
                    given.contains { tag in
                        tag["Key"]?.stringValue == current.key
                            && (tag["Value"] == nil || tag["Value"]?.stringValue == current.value)
                    }
                }
            }
        }
        for id in resources {
            if let index = network.vpcs.firstIndex(where: { $0.id == id }) {
                apply(&network.vpcs[index].tags)
            } else if let index = network.subnets.firstIndex(where: { $0.id == id }) {
                apply(&network.subnets[index].tags)
            } else if let index = network.securityGroups.firstIndex(where: { $0.id == id }) {
                apply(&network.securityGroups[index].tags)
            } else if let index = network.vpcEndpoints.firstIndex(where: { $0.id == id }) {
                apply(&network.vpcEndpoints[index].tags)
            } else {
                throw ServiceError(code: "InvalidID", message: "The ID '\(id)' is not valid")
            }
            if network.tagCount(of: id) > 50 {
                throw ServiceError(code: "TagLimitExceeded", message: "The maximum number of tags (50) was exceeded.")
            }
        }
        return .object([:])
    }
}

extension NetworkState {
    func tagCount(of id: String) -> Int {
        (vpc(id)?.tags ?? subnet(id)?.tags ?? securityGroup(id)?.tags ?? vpcEndpoints.first { $0.id == id }?.tags)?
            .count ?? 0
    }
}

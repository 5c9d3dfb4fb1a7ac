import StraitCore

extension NetworkAPI {
    /// What Strait's DNS answers for `network`: each interface endpoint's regional and per-zone names, to every
    /// client; and, for endpoints with private DNS in a VPC with DNS support and DNS hostnames on, the service's
    /// own name (`runtime.sagemaker.<region>.amazonaws.com`) to clients of that VPC.
    public func dnsSnapshot(_ network: NetworkState) -> DNSSnapshot {
        var names: [String: [DNSTarget]] = [:]
        for endpoint in network.vpcEndpoints {
            guard let service = services[endpoint.serviceName] else { continue }
            let addresses: [DNSAddress] = endpoint.interfaces.compactMap { interface in
                guard let zone = network.subnet(interface.subnetID)?.zone,
                    let address = IPv4CIDR.parseAddress(interface.address)
                else { return nil }
                return DNSAddress(zone: zone, address: address)
            }
            let dnsNames = service.dnsNames(of: endpoint, zones: addresses.map(\.zone))
            if let regional = dnsNames.first {
                names[regional, default: []].append(DNSTarget(vpcID: nil, addresses: addresses))
            }
            for (name, address) in zip(dnsNames.dropFirst(), addresses) {
                names[name, default: []].append(DNSTarget(vpcID: nil, addresses: [address]))
            }
            if endpoint.privateDnsEnabled, let vpc = network.vpc(endpoint.vpcID), vpc.enableDnsSupport,
                vpc.enableDnsHostnames
            {
                names[service.privateDnsName, default: []].append(DNSTarget(vpcID: vpc.id, addresses: addresses))
            }
        }
        return DNSSnapshot(
            subnets: network.subnets.map {
                DNSNetwork(base: $0.cidr.base, prefixLength: $0.cidr.prefixLength, vpcID: $0.vpcID, zone: $0.zone)
            },
            vpcs: network.vpcs.map {
                DNSNetwork(base: $0.cidr.base, prefixLength: $0.cidr.prefixLength, vpcID: $0.id, zone: nil)
            },
            names: names
        )
    }

    /// Whether the interface endpoint listener of `endpointID` admits a TCP connection from `source` to `port`:
    /// some ingress rule of one of the endpoint's security groups allows it. Rules that name a security group allow
    /// sources that are network interfaces carrying that group.
    public func admits(source: UInt32, endpointID: String, port: Int) -> Bool {
        let network = current
        guard let endpoint = network.vpcEndpoints.first(where: { $0.id == endpointID }) else { return false }
        let sourceGroups = network.groups(ofInterfaceAt: source)
        for id in endpoint.securityGroupIDs {
            guard let group = network.securityGroup(id) else { continue }
            if group.ingress.contains(where: { $0.allowsTCP(from: source, groups: sourceGroups, port: port) }) {
                return true
            }
        }
        return false
    }

    /// For a listener that owns many addresses (a wildcard `--listen`): whether a connection that arrived on `local`
    /// from `source` may stay. Addresses of interface endpoints apply their security groups; others admit all.
    public func admits(source: UInt32, local: String, port: Int) -> Bool {
        guard let endpoint = current.vpcEndpoints.first(where: { $0.interfaces.contains { $0.address == local } })
        else { return true }
        return admits(source: source, endpointID: endpoint.id, port: port)
    }

    /// The zone of the runtime interface endpoint network interface at `address`, if there is one.
    public func interfaceZone(ofAddress address: String) -> String? {
        let network = current
        for endpoint in network.vpcEndpoints where services[endpoint.serviceName]?.kind == .runtime {
            if let interface = endpoint.interfaces.first(where: { $0.address == address }) {
                return network.subnet(interface.subnetID)?.zone
            }
        }
        return nil
    }

    /// The zone of the subnet holding `address`, if any.
    public func subnetZone(ofAddress address: String) -> String? {
        guard let value = IPv4CIDR.parseAddress(address) else { return nil }
        return current.subnet(holding: value)?.zone
    }
}

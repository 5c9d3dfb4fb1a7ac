import Foundation
import StraitCore
import Synchronization
import Testing

@testable import StraitNetwork

@Suite("EC2 network")
struct NetworkAPITests {
    struct FixedClock: WallClock {
        func now() -> Date { Date(timeIntervalSince1970: 1_764_450_000) }
    }

    /// A switch shared with the persistence closure.
    final class Flag: Sendable {
        private let atomic = Atomic<Bool>(false)
        var value: Bool {
            get { atomic.load(ordering: .relaxed) }
            set { atomic.store(newValue, ordering: .relaxed) }
        }
    }

    private func network(
        persist: @escaping @Sendable (NetworkState) throws(ServiceError) -> Void = { _ in }
    )
        throws -> NetworkAPI
    {
        try NetworkAPI(
            region: "us-east-1",
            accountID: "123456789012",
            zones: .loopbackDefault(region: "us-east-1"),
            stored: nil,
            clock: FixedClock(),
            persist: persist,
            inUse: { (["subnet-00000000000000002"], []) }
        )
    }

    private func call(_ api: NetworkAPI, _ query: String) throws(ServiceError) -> JSONValue {
        let request = try EC2Query.parse(Array(query.utf8))
        return try api.handle(action: request.action, input: request.input)
    }

    @Test("first start makes the default VPC over the zones' subnets and the default runtime endpoint")
    func defaults() throws {
        let api = try network()
        let state = api.current
        #expect(state.vpcs.count == 1 && state.defaultVPC?.cidr.description == "127.0.0.0/22")
        #expect(state.subnets.map(\.id).sorted() == (1...3).map { "subnet-0000000000000000\($0)" })
        #expect(state.securityGroups.count == 1 && state.securityGroups[0].name == "default")
        let endpoint = try #require(state.vpcEndpoints.first)
        #expect(endpoint.interfaces.map(\.address).sorted() == ["127.0.1.1", "127.0.2.1", "127.0.3.1"])
        #expect(endpoint.privateDnsEnabled)
        // The default endpoint admits this machine's clients, as the zonal endpoints always have.
        #expect(api.admits(source: IPv4CIDR.parseAddress("127.0.0.1")!, endpointID: endpoint.id, port: 8400))
    }

    @Test("a failed write changes nothing")
    func failedWrite() throws {
        let fail = Flag()
        let api = try network(persist: { _ throws(ServiceError) in
            if fail.value { throw ServiceError(code: "InternalError", message: "disk", status: 500) }
        })
        let before = api.current
        fail.value = true
        #expect(throws: ServiceError.self) { try call(api, "Action=CreateVpc&CidrBlock=127.9.0.0/16") }
        #expect(api.current == before)
        fail.value = false
        _ = try call(api, "Action=CreateVpc&CidrBlock=127.9.0.0/16")
        #expect(api.current.vpcs.count == 2)
    }

    @Test("security groups: CIDR and group rules, ports and protocols")
    func admission() throws {
        let api = try network()
        let vpc = try call(api, "Action=CreateVpc&CidrBlock=127.9.0.0/16")["Vpc"]?["VpcId"]?.stringValue ?? ""
        let a = try call(api, "Action=CreateSubnet&VpcId=\(vpc)&CidrBlock=127.9.1.0/24&AvailabilityZone=us-east-1a")
        let b = try call(api, "Action=CreateSubnet&VpcId=\(vpc)&CidrBlock=127.9.2.0/24&AvailabilityZoneId=use1-az2")
        let subnetA = a["Subnet"]?["SubnetId"]?.stringValue ?? ""
        let subnetB = b["Subnet"]?["SubnetId"]?.stringValue ?? ""
        #expect(b["Subnet"]?["AvailabilityZone"] == .string("us-east-1b"))
        let group =
            try call(api, "Action=CreateSecurityGroup&GroupName=g&GroupDescription=d&VpcId=\(vpc)")["GroupId"]?
            .stringValue ?? ""
        let other =
            try call(api, "Action=CreateSecurityGroup&GroupName=h&GroupDescription=d&VpcId=\(vpc)")["GroupId"]?
            .stringValue ?? ""
        _ = try call(
            api,
            "Action=AuthorizeSecurityGroupIngress&GroupId=\(group)&IpPermissions.1.IpProtocol=tcp"
                + "&IpPermissions.1.FromPort=8000&IpPermissions.1.ToPort=8500"
                + "&IpPermissions.1.IpRanges.1.CidrIp=127.9.1.7/24&IpPermissions.1.Groups.1.GroupId=\(other)"
        )
        let first = try call(
            api,
            "Action=CreateVpcEndpoint&VpcEndpointType=Interface&VpcId=\(vpc)"
                + "&ServiceName=com.amazonaws.us-east-1.sagemaker.runtime&SubnetId.1=\(subnetA)&SubnetId.2=\(subnetB)"
                + "&SecurityGroupId.1=\(group)&PrivateDnsEnabled=false"
        )
        let endpointID = first["VpcEndpoint"]?["VpcEndpointId"]?.stringValue ?? ""
        let second = try call(
            api,
            "Action=CreateVpcEndpoint&VpcEndpointType=Interface&VpcId=\(vpc)"
                + "&ServiceName=com.amazonaws.us-east-1.sagemaker.api&SubnetId.1=\(subnetB)"
                + "&SecurityGroupId.1=\(other)&PrivateDnsEnabled=false"
        )
        let interfaces = api.current.vpcEndpoints.first { $0.id == endpointID }?.interfaces.map(\.address) ?? []
        #expect(interfaces == ["127.9.1.1", "127.9.2.1"])
        let apiAddress = try #require(api.current.vpcEndpoints.last?.interfaces.first?.address)
        #expect(apiAddress == "127.9.2.2")  // the next free low address of subnet b
        #expect(second["VpcEndpoint"]?["Groups"]?.arrayValue?.count == 1)
        let address = { (text: String) in IPv4CIDR.parseAddress(text)! }
        #expect(api.admits(source: address("127.9.1.200"), endpointID: endpointID, port: 8400))
        #expect(!api.admits(source: address("127.9.1.200"), endpointID: endpointID, port: 9000))
        #expect(!api.admits(source: address("127.9.2.200"), endpointID: endpointID, port: 8400))
        // The API endpoint's interface carries `other`, which the rule names.
        #expect(api.admits(source: address(apiAddress), endpointID: endpointID, port: 8400))
        #expect(!api.admits(source: address("127.9.1.200"), endpointID: "vpce-gone", port: 8400))
        // The subnet a deployed model uses cannot go; an endpoint's subnet neither.
        #expect(throws: ServiceError.self) { try call(api, "Action=DeleteSubnet&SubnetId=subnet-00000000000000002") }
        #expect(throws: ServiceError.self) { try call(api, "Action=DeleteSubnet&SubnetId=\(subnetA)") }
        #expect(throws: ServiceError.self) { try call(api, "Action=DeleteSecurityGroup&GroupId=\(other)") }
    }

    @Test("an endpoint's interface address skips the instances' range, then counts down from the top")
    func addresses() {
        let cidr = IPv4CIDR("127.9.1.0/28")!
        let low = Set((1...9).map { "127.9.1.\($0)" })
        #expect(NetworkOperations.freeAddress(in: cidr, taken: []) == "127.9.1.1")
        #expect(NetworkOperations.freeAddress(in: cidr, taken: low) == "127.9.1.14")
        let all = low.union((10...14).map { "127.9.1.\($0)" })
        #expect(NetworkOperations.freeAddress(in: cidr, taken: all) == nil)
    }

    @Test("DNS snapshot: vpce names for all, the private name only with the VPC's DNS attributes on")
    func dns() throws {
        let api = try network()
        let snapshot = api.dnsSnapshot(api.current)
        let privateName = "runtime.sagemaker.us-east-1.amazonaws.com"
        #expect(snapshot.names[privateName]?.first?.vpcID == api.current.defaultVPC?.id)
        #expect(snapshot.names[privateName]?.first?.addresses.count == 3)
        #expect(snapshot.names.keys.filter { $0.hasSuffix(".vpce.amazonaws.com") }.count == 4)
        let vpc = try #require(api.current.defaultVPC?.id)
        _ = try call(api, "Action=ModifyVpcAttribute&VpcId=\(vpc)&EnableDnsHostnames.Value=false")
        #expect(api.dnsSnapshot(api.current).names[privateName] == nil)
    }
}

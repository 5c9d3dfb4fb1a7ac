import Foundation
import StraitCore
import Testing

@testable import StraitNetwork

@Suite("EC2 query protocol")
struct EC2QueryTests {
    private func parse(_ text: String) throws(ServiceError) -> EC2Query.Request {
        try EC2Query.parse(Array(text.utf8))
    }

    private func code(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("flattened lists and nested structures become botocore's members")
    func nested() throws {
        let request = try parse(
            "Action=DescribeVpcs&Version=2016-11-15&VpcId.2=vpc-b&VpcId.1=vpc-a&Filter.1.Name=tag%3AName"
                + "&Filter.1.Value.1=web+1&Filter.1.Value.2=x*&MaxResults=5&DryRun=false"
        )
        #expect(request.action == "DescribeVpcs")
        #expect(request.input["VpcIds"] == .array([.string("vpc-a"), .string("vpc-b")]))
        #expect(request.input["Filters"]?.arrayValue?.first?["Name"] == .string("tag:Name"))
        #expect(request.input["Filters"]?.arrayValue?.first?["Values"] == .array([.string("web 1"), .string("x*")]))
        #expect(request.input["MaxResults"] == .number(5))
        #expect(request.input["DryRun"] == .bool(false))
    }

    @Test("IpPermissions use the capitalised locationNames botocore sends")
    func ipPermissions() throws {
        let request = try parse(
            "Action=AuthorizeSecurityGroupIngress&GroupId=sg-1&IpPermissions.1.IpProtocol=tcp"
                + "&IpPermissions.1.FromPort=443&IpPermissions.1.ToPort=443&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8"
                + "&IpPermissions.1.Groups.1.GroupId=sg-2"
        )
        let permission = request.input["IpPermissions"]?.arrayValue?.first
        #expect(permission?["FromPort"] == .number(443))
        #expect(permission?["IpRanges"]?.arrayValue?.first?["CidrIp"] == .string("10.0.0.0/8"))
        #expect(permission?["UserIdGroupPairs"]?.arrayValue?.first?["GroupId"] == .string("sg-2"))
    }

    @Test("bad bytes get EC2's error codes")
    func badBytes() {
        #expect(code("") == "MissingAction")
        #expect(code("Action=") == "MissingAction")
        #expect(code("Action=TerminateInstances") == "InvalidAction")
        #expect(code("Action=DescribeVpcs&Bogus=1") == "UnknownParameter")
        #expect(code("Action=DescribeVpcs&MaxResults=9999999999999999999999") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&MaxResults=-9223372036854775808") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&MaxResults=-9007199254740993") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&DryRun=yes") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&VpcId.0=vpc-1") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&VpcId.01=vpc-1") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&VpcId.1=a&VpcId.1=b") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&VpcId=vpc-1") == "UnknownParameter")
        #expect(code("Action=DescribeVpcs&VpcId.1.Deeper=vpc-1") == "UnknownParameter")
        #expect(code("Action=DescribeVpcs&%E0%A4=1") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&a=%4") == "InvalidParameterValue")
        #expect(code("Action=CreateSubnet&CidrBlock=10.0.0.0/24") == "MissingParameter")
        #expect(code("Action=CreateVpcEndpoint&VpcId=vpc-1&VpcEndpointType=Tunnel") == "InvalidParameterValue")
        #expect(code("Action=DescribeVpcs&" + String(repeating: "a.", count: 20) + "=1") == "UnknownParameter")
        let many = (1...10_001).map { "VpcId.\($0)=v" }.joined(separator: "&")
        #expect(code("Action=DescribeVpcs&" + many) == "InvalidParameterValue")
    }

    @Test("random bytes never trap")
    func fuzz() {
        var seed: UInt64 = 0x5EED
        func next() -> UInt64 {
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let alphabet = Array(
            "Action=DescribeVpcsCreateSubnetFilter.1.Name.Value&%=+-0123456789VpcId.IpPermissions.FromPort".utf8
        )
        for _ in 0..<3_000 {
            let length = Int(next() % 120)
            let bytes = (0..<length).map { _ in
                next() % 4 == 0 ? UInt8(truncatingIfNeeded: next()) : alphabet[Int(next() % UInt64(alphabet.count))]
            }
            _ = try? EC2Query.parse(bytes)
        }
    }

    @Test("answers are the XML botocore parses: locationNames, items, escapes, ISO times")
    func xml() {
        let output: JSONValue = .object([
            "Vpc": .object([
                "VpcId": .string("vpc-1"), "IsDefault": .bool(false),
                "Tags": .array([.object(["Key": .string("a<b"), "Value": .string("x & y")])]),
            ])
        ])
        let text = String(
            decoding: EC2XML.response(action: "CreateVpc", output: output, requestID: "r1"),
            as: UTF8.self
        )
        #expect(text.contains("<CreateVpcResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"))
        #expect(text.contains("<requestId>r1</requestId>"))
        #expect(text.contains("<vpc>") && text.contains("<vpcId>vpc-1</vpcId>") && text.contains("<isDefault>false"))
        #expect(text.contains("<tagSet><item><key>a&lt;b</key><value>x &amp; y</value></item></tagSet>"))
        #expect(EC2XML.timestamp(.init(timeIntervalSince1970: 1_764_450_000.25)) == "2025-11-29T21:00:00.250Z")
        #expect(EC2XML.escape("a\u{1}b") == "a\u{FFFD}b")
        let error = String(
            decoding: EC2XML.error(ServiceError(code: "X.Y", message: "<m>"), requestID: "r"),
            as: UTF8.self
        )
        #expect(error.contains("<Code>X.Y</Code><Message>&lt;m&gt;</Message>"))
    }

    @Test("filter wildcards")
    func glob() {
        #expect(Glob.matches("*", ""))
        #expect(Glob.matches("web-*", "web-1"))
        #expect(Glob.matches("w?b", "web"))
        #expect(!Glob.matches("w?b", "weeb"))
        #expect(Glob.matches("a*b*c", "aXXbYYc"))
        #expect(!Glob.matches("abc", "abd"))
        #expect(Glob.matches("", ""))
        #expect(!Glob.matches("", "x"))
    }
}

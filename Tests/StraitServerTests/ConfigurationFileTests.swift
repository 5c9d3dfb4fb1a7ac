import Foundation
import StraitCore
import Testing

@testable import StraitServer

@Suite struct ConfigurationFileTests {
    private func zones(_ json: String) throws -> ZoneLayout? {
        try ConfigurationFile.zones(JSONParser.parse(json), source: "test.json")
    }

    @Test func zonesAndSubnets() throws {
        let layout = try #require(
            try zones(
                #"""
                {"zones": [
                  {"name": "eu-west-1a", "id": "euw1-az1", "subnets": [{"id": "subnet-a1", "cidr": "127.0.5.0/24"},
                                                                       {"id": "subnet-a2", "cidr": "127.0.6.0/25"}]},
                  {"name": "eu-west-1b", "subnets": [{"id": "subnet-b1", "cidr": "127.0.7.0/24"}]}
                ]}
                """#
            )
        )
        #expect(layout.zones.map(\.name) == ["eu-west-1a", "eu-west-1b"])
        #expect(layout.zones[1].id == "eu-west-1b")
        #expect(layout.zone(ofSubnet: "subnet-a2")?.name == "eu-west-1a")
        #expect(layout.subnet(id: "subnet-b1")?.cidr.description == "127.0.7.0/24")
    }

    @Test func noZonesMeansTheDefault() throws {
        #expect(try zones("{}") == nil)
    }

    @Test(arguments: [
        ("[]", "must be a JSON object"),
        (#"{"zone": []}"#, "unknown setting 'zone'"),
        (#"{"zones": []}"#, "non-empty list"),
        (#"{"zones": [{"subnets": [{"id": "s", "cidr": "127.0.1.0/24"}]}]}"#, "needs a 'name'"),
        (#"{"zones": [{"name": "a"}]}"#, "needs 'subnets'"),
        (#"{"zones": [{"name": "a", "subnets": [{"id": "s", "cidr": "127.0.1.1/24"}]}]}"#, "no host bits"),
        (#"{"zones": [{"name": "a", "subnets": [{"id": "s", "cidr": "127.0.1.0/31"}]}]}"#, "too small"),
        (#"{"zones": [{"name": "a", "subnets": [{"id": "s/1", "cidr": "127.0.1.0/24"}]}]}"#, "needs an 'id'"),
        (
            #"{"zones": [{"name": "a", "subnets": [{"id": "s", "cidr": "127.0.1.0/24"}]}, {"name": "a", "subnets": [{"id": "t", "cidr": "127.0.2.0/24"}]}]}"#,
            "used twice"
        ),
        (
            #"{"zones": [{"name": "a", "subnets": [{"id": "s", "cidr": "127.0.0.0/16"}]}, {"name": "b", "subnets": [{"id": "t", "cidr": "127.0.2.0/24"}]}]}"#,
            "overlaps subnet 's'"
        ),
        (
            #"{"zones": [{"name": "a", "subnets": [{"id": "s", "cidr": "127.0.1.0/24"}]}, {"name": "b", "subnets": [{"id": "s", "cidr": "127.0.2.0/24"}]}]}"#,
            "subnet id 's' is used twice"
        ),
    ])
    func badFiles(_ json: String, _ message: String) {
        #expect {
            _ = try zones(json)
        } throws: { error in
            (error as? ConfigurationError)?.description.contains(message) == true
        }
    }

    @Test func imagesTable() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strait-images-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"images": {"my-model:1": "/opt/models/serve", "xgb": "strait/xgboost"}}"#.write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        #expect(
            try ConfigurationFile.images(path: path) == ["my-model:1": "/opt/models/serve", "xgb": "strait/xgboost"]
        )
        #expect(try ConfigurationFile.zones(path: path) == nil)
        try #"{"images": {"bad": 3}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.images(path: path) }
    }

    @Test func unreadableFile() {
        #expect(throws: ConfigurationError.self) { try ConfigurationFile.zones(path: "/nonexistent/strait.json") }
    }
}

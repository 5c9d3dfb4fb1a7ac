import Foundation
import StraitControlPlane
import StraitCore
import StraitTestSupport
import Testing

@Suite struct ListTests {
    /// 25 models created a minute apart, named so that name order differs from creation order.
    struct Catalog {
        let harness = Harness(clock: TestClock(Fixtures.epoch, step: 60))
        /// Names in creation order, with their creation times.
        var created: [(name: String, time: Double)] = []

        init(count: Int = 25) throws {
            for index in 0..<count {
                let number = (index * 7) % count
                let name = "model-\(number < 10 ? "0" : "")\(number)"
                try harness.createModel(name)
                let time = try #require(
                    try harness.call("DescribeModel", #"{"ModelName":"\#(name)"}"#)["CreationTime"]?.doubleValue
                )
                created.append((name, time))
            }
        }

        var names: [String] { created.map(\.name) }

        /// Every page of ListModels for `query` (without NextToken), in order.
        func pages(_ query: [String: JSONValue]) throws -> [[String]] {
            var pages: [[String]] = []
            var token: String?
            repeat {
                var request = query
                if let token { request["NextToken"] = .string(token) }
                let page = try harness.call("ListModels", JSONValue.object(request).serialized())
                pages.append(page.strings("Models", "ModelName"))
                token = page["NextToken"]?.stringValue
                try #require(pages.count <= 30, "pagination does not end")
            } while token != nil
            return pages
        }
    }

    @Test func createdTimesAreDistinctAndIncreasing() throws {
        let catalog = try Catalog()
        #expect(catalog.created.map(\.time) == catalog.created.map(\.time).sorted())
        #expect(Set(catalog.created.map(\.time)).count == 25)
    }

    @Test func defaultPageIsTenNewestFirst() throws {
        let catalog = try Catalog()
        let page = try catalog.harness.call("ListModels", "{}")
        #expect(page.strings("Models", "ModelName") == Array(catalog.names.reversed().prefix(10)))
        #expect(page["NextToken"]?.stringValue?.isEmpty == false)
        let first = try #require(page["Models"]?.arrayValue?.first)
        let newest = try #require(catalog.created.last)
        #expect(
            first
                == .object([
                    "ModelName": .string(newest.name),
                    "ModelArn": .string(catalog.harness.arn(.model, newest.name)),
                    "CreationTime": .number(newest.time),
                ])
        )
    }

    @Test(arguments: ["Name", "CreationTime", nil], ["Ascending", "Descending", nil])
    func paginationVisitsEveryModelOnce(_ sortBy: String?, _ sortOrder: String?) throws {
        let catalog = try Catalog()
        var query: [String: JSONValue] = ["MaxResults": .number(7)]
        if let sortBy { query["SortBy"] = .string(sortBy) }
        if let sortOrder { query["SortOrder"] = .string(sortOrder) }
        let pages = try catalog.pages(query)
        #expect(pages.map(\.count) == [7, 7, 7, 4])

        let byKey = sortBy == "Name" ? catalog.names.sorted() : catalog.names
        let expected = sortOrder == "Ascending" ? byKey : byKey.reversed()
        #expect(pages.flatMap { $0 } == expected)
    }

    @Test func lastFullPageHasNoToken() throws {
        let catalog = try Catalog(count: 20)
        let pages = try catalog.pages(["MaxResults": .number(10)])
        #expect(pages.map(\.count) == [10, 10])
        let all = try catalog.harness.call("ListModels", #"{"MaxResults":100}"#)
        #expect(all.strings("Models", "ModelName").count == 20)
        #expect(all["NextToken"] == nil)
    }

    @Test func pagesDoNotRepeatOrSkipWhenTheListChanges() throws {
        let catalog = try Catalog()
        let harness = catalog.harness
        let first = try harness.call("ListModels", #"{"MaxResults":5,"SortOrder":"Ascending"}"#)
        let firstNames = first.strings("Models", "ModelName")
        let token = try #require(first["NextToken"]?.stringValue)
        try harness.call("DeleteModel", #"{"ModelName":"\#(firstNames[4])"}"#)
        try harness.createModel("model-new")

        var seen = firstNames
        var request: [String: JSONValue] = [
            "MaxResults": .number(5), "SortOrder": .string("Ascending"), "NextToken": .string(token),
        ]
        while true {
            let page = try harness.call("ListModels", JSONValue.object(request).serialized())
            seen += page.strings("Models", "ModelName")
            guard let next = page["NextToken"]?.stringValue else { break }
            request["NextToken"] = .string(next)
        }
        #expect(seen == catalog.names + ["model-new"])
    }

    @Test(arguments: [("MODEL-0", 10), ("model-1", 10), ("L-2", 5), ("-24", 1), ("zzz", 0), ("model", 25)])
    func nameContainsIgnoresCase(_ fragment: String, _ count: Int) throws {
        let catalog = try Catalog()
        let page = try catalog.harness.call("ListModels", #"{"NameContains":"\#(fragment)","MaxResults":100}"#)
        let names = page.strings("Models", "ModelName")
        #expect(names.count == count)
        #expect(names.allSatisfy { $0.lowercased().contains(fragment.lowercased()) })
    }

    @Test func nameContainsMatchesMixedCaseNames() throws {
        let harness = Harness(clock: TestClock(Fixtures.epoch, step: 1))
        for name in ["Alpha-One", "alpha-two", "Beta", "ALPHABET"] { try harness.createModel(name) }
        let page = try harness.call("ListModels", #"{"NameContains":"aLpHa","SortBy":"Name","SortOrder":"Ascending"}"#)
        #expect(page.strings("Models", "ModelName") == ["Alpha-One", "alpha-two", "ALPHABET"])
    }

    @Test func creationTimeBounds() throws {
        let catalog = try Catalog()
        let times = catalog.created.map(\.time)
        func list(_ bounds: String) throws -> [String] {
            try catalog.harness.call("ListModels", #"{"MaxResults":100,"SortOrder":"Ascending"\#(bounds)}"#)
                .strings("Models", "ModelName")
        }
        #expect(try list(#","CreationTimeAfter":\#(times[9])"#) == Array(catalog.names[10...]))
        #expect(try list(#","CreationTimeBefore":\#(times[5])"#) == Array(catalog.names[..<5]))
        #expect(
            try list(#","CreationTimeAfter":\#(times[4]),"CreationTimeBefore":\#(times[10])"#)
                == Array(catalog.names[5..<10])
        )
        #expect(try list(#","CreationTimeAfter":\#(times[24])"#) == [])
        // ISO 8601 text is read as well as epoch seconds.
        let iso = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: times[19]))
        #expect(try list(#","CreationTimeAfter":"\#(iso)""#) == Array(catalog.names[20...]))
    }

    @Test(arguments: [
        (
            0,
            "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ),
        (
            101,
            "Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"
        ),
    ])
    func maxResultsOutOfRange(_ maxResults: Int, _ failure: String) throws {
        for operation in ["ListModels", "ListEndpointConfigs", "ListEndpoints"] {
            let error = try #require(Harness().failure(operation, #"{"MaxResults":\#(maxResults)}"#))
            #expect(error.code == "ValidationException")
            #expect(error.message == "1 validation error detected: " + failure)
        }
    }

    @Test(arguments: [
        "garbage", "!!!", "bm90IGpzb24=", "e30=", "eyJuIjoxfQ==", String(repeating: "A", count: 8192),
    ])
    func garbageNextToken(_ token: String) throws {
        let catalog = try Catalog(count: 3)
        let error = try #require(catalog.harness.failure("ListModels", #"{"NextToken":"\#(token)"}"#))
        #expect(error.code == "ValidationException")
        #expect(error.message.hasPrefix("Invalid pagination token"))
    }

    @Test func emptyNextTokenStartsAtTheBeginning() throws {
        let catalog = try Catalog(count: 3)
        let page = try catalog.harness.call("ListModels", #"{"NextToken":""}"#)
        #expect(page.strings("Models", "ModelName") == catalog.names.reversed())
    }

    @Test func endpointConfigsAreListedToo() throws {
        let harness = Harness(clock: TestClock(Fixtures.epoch, step: 1))
        try harness.createModel("m")
        for name in ["c-b", "c-a", "c-c"] { try harness.createConfig(name, model: "m") }
        let page = try harness.call("ListEndpointConfigs", #"{"SortBy":"Name","SortOrder":"Ascending"}"#)
        #expect(page.strings("EndpointConfigs", "EndpointConfigName") == ["c-a", "c-b", "c-c"])
        #expect(
            page.strings("EndpointConfigs", "EndpointConfigArn")
                == ["c-a", "c-b", "c-c"].map { harness.arn(.endpointConfig, $0) }
        )
    }

    @Test(.timeLimit(.minutes(1)))
    func endpointsByStatus() async throws {
        let reconciler = StubReconciler { endpoint, _, spec in
            endpoint.hasPrefix("bad") ? .failed(reason: "broken") : .succeeded(images: StubReconciler.images(for: spec))
        }
        let harness = Harness(clock: TestClock(Fixtures.epoch, step: 1), reconciler: reconciler)
        for name in ["good-1", "bad-1", "good-2"] { try harness.createEndpointStack(name) }

        func list(_ filter: String) throws -> [String] {
            try harness.call("ListEndpoints", #"{"SortBy":"Name","SortOrder":"Ascending"\#(filter)}"#)
                .strings("Endpoints", "EndpointName")
        }
        #expect(try list(#","StatusEquals":"Creating""#) == ["bad-1", "good-1", "good-2"])
        try await harness.withController {
            #expect(await poll { (try? list(#","StatusEquals":"Creating""#)) == [] })
            #expect(try list(#","StatusEquals":"InService""#) == ["good-1", "good-2"])
            #expect(try list(#","StatusEquals":"Failed""#) == ["bad-1"])
            #expect(try list(#","StatusEquals":"Deleting""#) == [])
            let all = try harness.call("ListEndpoints", #"{"SortBy":"Status","SortOrder":"Ascending"}"#)
            #expect(all.strings("Endpoints", "EndpointName") == ["bad-1", "good-1", "good-2"])
            #expect(all.strings("Endpoints", "EndpointStatus") == ["Failed", "InService", "InService"])
            let first = try #require(all["Endpoints"]?.arrayValue?.first)
            #expect(first["EndpointArn"] == .string(harness.arn(.endpoint, "bad-1")))
            #expect(first["CreationTime"]?.doubleValue != nil)
            #expect(first["LastModifiedTime"]?.doubleValue != nil)
        }
    }

    @Test func statusEqualsOutsideTheEnum() throws {
        let error = try #require(Harness().failure("ListEndpoints", #"{"StatusEquals":"Running"}"#))
        #expect(error.code == "ValidationException")
        #expect(error.message.contains("Member must satisfy enum value set: [OutOfService, Creating"))
    }
}

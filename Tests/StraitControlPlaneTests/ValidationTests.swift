import StraitControlPlane
import StraitCore
import Testing

/// A request body and a label for it in test output.
struct Body: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]

    init(_ label: String, _ bytes: [UInt8]) {
        self.label = label
        self.bytes = bytes
    }

    init(_ text: String) { self.init(text, Array(text.utf8)) }

    var testDescription: String { label }
}

/// Every request is checked against botocore's SageMaker model before it is acted on, with SageMaker's wording.
@Suite struct ValidationTests {
    static let modelNamePattern = #"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"#
    static let endpointNamePattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"

    @Test(arguments: ["bad_name!", "-leading", "trailing-", "has space", "ünïcode", "dot.ted", ""])
    func modelNameFailsThePattern(_ name: String) throws {
        let harness = Harness()
        let error = try #require(
            harness.failure("CreateModel", #"{"ModelName":"\#(name)","PrimaryContainer":{"Image":"i"}}"#)
        )
        #expect(error.code == "ValidationException")
        #expect(error.status == 400)
        #expect(
            error.message
                == "1 validation error detected: Value '\(name)' at 'modelName' failed to satisfy constraint: Member must satisfy regular expression pattern: \(Self.modelNamePattern)"
        )
    }

    @Test(arguments: ["a", "A-1", "model--x", String(repeating: "m", count: 63)])
    func modelNameWithinTheModel(_ name: String) throws {
        let harness = Harness()
        try harness.createModel(name)
    }

    @Test func endpointNameTooLongFailsLengthAndPattern() throws {
        let name = String(repeating: "a", count: 64)
        let error = try #require(
            Harness().failure("CreateEndpoint", #"{"EndpointName":"\#(name)","EndpointConfigName":"c"}"#)
        )
        #expect(error.code == "ValidationException")
        #expect(
            error.message
                == "2 validation errors detected: Value '\(name)' at 'endpointName' failed to satisfy constraint: Member must have length less than or equal to 63; Value '\(name)' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: \(Self.endpointNamePattern)"
        )
    }

    @Test func modelNameTooLongFailsLengthOnly() throws {
        let name = String(repeating: "a", count: 64)
        let error = try #require(
            Harness().failure("CreateModel", #"{"ModelName":"\#(name)","PrimaryContainer":{"Image":"i"}}"#)
        )
        #expect(
            error.message
                == "1 validation error detected: Value '\(name)' at 'modelName' failed to satisfy constraint: Member must have length less than or equal to 63"
        )
    }

    @Test(arguments: [
        #"{"PrimaryContainer":{"Image":"i"}}"#, #"{"ModelName":null,"PrimaryContainer":{"Image":"i"}}"#, "",
    ])
    func missingRequiredMember(_ body: String) throws {
        let error = try #require(Harness().failure("CreateModel", body))
        #expect(error.code == "ValidationException")
        #expect(
            error.message
                == "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: Member must not be null"
        )
    }

    @Test func everyFailureIsListed() throws {
        let error = try #require(Harness().failure("CreateEndpoint", "{}"))
        #expect(
            error.message
                == "2 validation errors detected: Value null at 'endpointConfigName' failed to satisfy constraint: Member must not be null; Value null at 'endpointName' failed to satisfy constraint: Member must not be null"
        )
    }

    @Test func listMemberPath() throws {
        let harness = Harness()
        try harness.createModel("m")
        let body = #"""
            {"EndpointConfigName":"c","ProductionVariants":[
              {"VariantName":"a","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":1},
              {"VariantName":"b","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":0}]}
            """#
        let error = try #require(harness.failure("CreateEndpointConfig", body))
        #expect(error.code == "ValidationException")
        #expect(
            error.message
                == "1 validation error detected: Value '0' at 'productionVariants.2.member.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    }

    @Test func emptyListBelowItsMinimum() throws {
        let error = try #require(
            Harness().failure("CreateEndpointConfig", #"{"EndpointConfigName":"c","ProductionVariants":[]}"#)
        )
        #expect(
            error.message
                == "1 validation error detected: Value '[]' at 'productionVariants' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    }

    @Test func nestedStructurePath() throws {
        let error = try #require(
            Harness().failure("CreateModel", #"{"ModelName":"m","PrimaryContainer":{"Image":"has space"}}"#)
        )
        #expect(
            error.message
                == #"1 validation error detected: Value 'has space' at 'primaryContainer.image' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\S]+"#
        )
    }

    @Test func tagKeyPath() throws {
        let error = try #require(
            Harness().failure(
                "CreateModel",
                #"{"ModelName":"m","PrimaryContainer":{"Image":"i"},"Tags":[{"Key":"","Value":"v"}]}"#
            )
        )
        #expect(error.code == "ValidationException")
        #expect(
            error.message.hasPrefix(
                "1 validation error detected: Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1"
            )
        )
    }

    @Test func sortOrderOutsideTheEnum() throws {
        let error = try #require(Harness().failure("ListModels", #"{"SortOrder":"Sideways"}"#))
        #expect(error.code == "ValidationException")
        #expect(
            error.message
                == "1 validation error detected: Value 'Sideways' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [Ascending, Descending]"
        )
    }

    @Test func sortByOutsideTheEnum() throws {
        let error = try #require(Harness().failure("ListModels", #"{"SortBy":"Status"}"#))
        #expect(
            error.message
                == "1 validation error detected: Value 'Status' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [Name, CreationTime]"
        )
    }

    @Test func instanceTypeOutsideTheEnum() throws {
        let harness = Harness()
        try harness.createModel("m")
        let error = try #require(
            harness.failure(
                "CreateEndpointConfig",
                #"{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.bogus","InitialInstanceCount":1}]}"#
            )
        )
        #expect(error.code == "ValidationException")
        #expect(
            error.message.hasPrefix(
                "1 validation error detected: Value 'ml.bogus' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [ml.t2.medium, "
            )
        )
        #expect(error.message.contains("ml.m5.large"))
        #expect(error.message.hasSuffix("]"))
    }

    @Test(arguments: [
        (
            "CreateEndpointConfig",
            #"{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":"1"}]}"#
        ),
        ("CreateModel", #"{"ModelName":5}"#),
        ("CreateModel", "[]"),
        ("CreateModel", #"[{"ModelName":"m"}]"#),
        ("CreateModel", #"{"ModelName":"m","PrimaryContainer":"image"}"#),
        ("CreateModel", #"{"ModelName":"m","EnableNetworkIsolation":"true"}"#),
        ("CreateModel", #"{"ModelName":"m","PrimaryContainer":{"Image":"i","Environment":{"A":1}}}"#),
        ("CreateModel", #"{"ModelName":"m","PrimaryContainer":{"Image":"i","Environment":[]}}"#),
        ("CreateModel", #"{"ModelName":"m","Containers":{"Image":"i"}}"#),
        ("ListModels", #"{"MaxResults":1.5}"#),
        ("ListModels", #"{"MaxResults":"10"}"#),
        ("ListModels", #"{"CreationTimeAfter":true}"#),
        ("ListModels", #"{"CreationTimeAfter":"yesterday"}"#),
        ("ListModels", "null"),
        ("ListModels", #""text""#),
        ("ListModels", "42"),
        ("ListModels", "true"),
        (
            "AddTags",
            #"{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:model/m","Tags":{"Key":"a","Value":"b"}}"#
        ),
    ])
    func wrongJSONTypeIsASerializationError(_ operation: String, _ body: String) throws {
        let error = try #require(Harness().failure(operation, body))
        #expect(error.code == "SerializationException")
        #expect(error.status == 400)
    }

    @Test func serializationMessageNamesTheMember() throws {
        let error = try #require(Harness().failure("CreateModel", #"{"ModelName":5}"#))
        #expect(error.message == "Expected a string for 'modelName' but found number.")
        let bodyError = try #require(Harness().failure("CreateModel", "[]"))
        #expect(bodyError.message == "Expected an object for the request body but found array.")
    }

    static let malformedBodies: [Body] = [
        Body("{"),
        Body("[1,"),
        Body("NUL byte", [0]),
        Body("invalid UTF-8 bytes", [0xFF, 0xFE, 0xFD]),
        Body("invalid UTF-8 in a string", Array(#"{"ModelName":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)),
        Body("overlong UTF-8 in a string", Array(#"{"NameContains":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)),
        Body("100-deep arrays", Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8)),
        Body(
            "100-deep objects",
            Array((String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)).utf8)
        ),
        Body("{}x"),
        Body("{'a':1}"),
        Body(#"{"a":1,}"#),
        Body(#"{"a" 1}"#),
        Body(#"{"a":01}"#),
        Body(#"{"a":1.}"#),
        Body(#"{"a":-}"#),
        Body(#"{"a":"\x"}"#),
        Body(#"{"a":"\ud800"}"#),
        Body(#"{"a":"\u12"}"#),
        Body("control character in a string", Array("{\"a\":\"\u{1}\"}".utf8)),
        Body(#"{"a":NaN}"#),
        Body(#"{"a":tru}"#),
        Body(#"{"a":"unterminated}"#),
        Body(#"{"a":1e999}"#),
        Body("   "),
    ]

    @Test(arguments: malformedBodies)
    func malformedJSONIsASerializationError(_ body: Body) throws {
        let harness = Harness()
        let error = #expect(throws: ServiceError.self) {
            try harness.plane.handle(target: "SageMaker.ListModels", body: body.bytes)
        }
        #expect(error?.code == "SerializationException")
        #expect(error?.message.hasPrefix("The request body is not valid JSON: ") == true)
    }

    @Test(arguments: [
        "SageMaker.CreateTrainingJob", "SageMaker.Bogus", "SageMaker.", "SageMaker", "sagemaker.CreateModel",
        "SageMaker.createModel", "Other.CreateModel", "CreateModel", " SageMaker.CreateModel",
    ])
    func unknownTarget(_ target: String) throws {
        let harness = Harness()
        let error = #expect(throws: ServiceError.self) {
            try harness.plane.handle(target: target, body: Array(#"{"ModelName":"m"}"#.utf8))
        }
        #expect(error?.code == "UnknownOperationException")
        #expect(error?.message == "Unknown operation \(target).")
    }

    @Test func emptyTarget() throws {
        let error = #expect(throws: ServiceError.self) { try Harness().plane.handle(target: "", body: []) }
        #expect(error?.code == "UnknownOperationException")
        #expect(error?.message == "Missing X-Amz-Target header.")
    }

    @Test func unknownTargetIsReportedBeforeTheBody() throws {
        let error = #expect(throws: ServiceError.self) {
            try Harness().plane.handle(target: "SageMaker.Bogus", body: [0xFF, 0x7B])
        }
        #expect(error?.code == "UnknownOperationException")
    }

    @Test func emptyBodyIsAnEmptyObject() throws {
        let harness = Harness()
        #expect(try harness.plane.handle(target: "SageMaker.ListModels", body: []) == .object(["Models": .array([])]))
        #expect(try harness.call("ListEndpoints", "") == .object(["Endpoints": .array([])]))
        #expect(try harness.call("ListEndpointConfigs", " {} ") == .object(["EndpointConfigs": .array([])]))
    }

    @Test func servesTheSeventeenOperations() {
        #expect(
            Harness().plane.operationNames == [
                "AddTags", "CreateEndpoint", "CreateEndpointConfig", "CreateModel", "DeleteEndpoint",
                "DeleteEndpointConfig", "DeleteModel", "DeleteTags", "DescribeEndpoint", "DescribeEndpointConfig",
                "DescribeModel", "ListEndpointConfigs", "ListEndpoints", "ListModels", "ListTags", "UpdateEndpoint",
                "UpdateEndpointWeightsAndCapacities",
            ]
        )
    }
}

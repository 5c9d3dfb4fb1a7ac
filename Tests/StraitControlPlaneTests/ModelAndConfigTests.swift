import StraitControlPlane
import StraitCore
import StraitTestSupport
import Testing

@Suite struct ModelTests {
    @Test func createAnswersTheLowercasedARN() throws {
        let harness = Harness()
        let answer = try harness.createModel("My-Model")
        #expect(answer == .object(["ModelArn": .string("arn:aws:sagemaker:us-east-1:123456789012:model/my-model")]))
    }

    @Test func describeReturnsWhatWasGiven() throws {
        let harness = Harness()
        try harness.call(
            "CreateModel",
            #"""
            {"ModelName":"My-Model","ExecutionRoleArn":"arn:aws:iam::123456789012:role/strait",
             "PrimaryContainer":{"Image":"strait/echo:1","Environment":{"MODE":"fast","EMPTY":""},"ModelDataUrl":"s3://bucket/model.tar.gz"},
             "Tags":[{"Key":"team","Value":"ml"}]}
            """#
        )
        let expected = try JSONParser.parse(
            #"""
            {"ModelName":"My-Model","ExecutionRoleArn":"arn:aws:iam::123456789012:role/strait",
             "PrimaryContainer":{"Image":"strait/echo:1","Environment":{"MODE":"fast","EMPTY":""},"ModelDataUrl":"s3://bucket/model.tar.gz"},
             "ModelArn":"arn:aws:sagemaker:us-east-1:123456789012:model/my-model",
             "CreationTime":1700000000,"EnableNetworkIsolation":false}
            """#
        )
        #expect(try harness.call("DescribeModel", #"{"ModelName":"My-Model"}"#) == expected)
        // Names are case-insensitive; the stored spelling is what comes back.
        #expect(try harness.call("DescribeModel", #"{"ModelName":"my-model"}"#) == expected)
    }

    @Test func describeKeepsAnExplicitNetworkIsolation() throws {
        let harness = Harness()
        try harness.call(
            "CreateModel",
            #"{"ModelName":"m","Containers":[{"Image":"a"},{"Image":"b"}],"EnableNetworkIsolation":true}"#
        )
        let described = try harness.call("DescribeModel", #"{"ModelName":"m"}"#)
        #expect(described["EnableNetworkIsolation"] == .bool(true))
        #expect(described["Containers"]?.arrayValue?.count == 2)
    }

    @Test(arguments: ["x", "X"])
    func duplicate(_ second: String) throws {
        let harness = Harness()
        try harness.createModel("x")
        let error = try #require(
            harness.failure("CreateModel", #"{"ModelName":"\#(second)","PrimaryContainer":{"Image":"i"}}"#)
        )
        #expect(error.code == "ValidationException")
        #expect(
            error.message
                == #"Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/x"."#
        )
    }

    @Test(arguments: ["DescribeModel", "DeleteModel"])
    func missing(_ operation: String) throws {
        let error = try #require(Harness().failure(operation, #"{"ModelName":"Nope"}"#))
        #expect(error.code == "ValidationException")
        #expect(error.message == #"Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/nope"."#)
    }

    @Test func deleteRemovesIt() throws {
        let harness = Harness()
        try harness.createModel("m")
        #expect(try harness.call("DeleteModel", #"{"ModelName":"M"}"#) == .object([:]))
        #expect(
            harness.failure("DescribeModel", #"{"ModelName":"m"}"#)?.message.hasPrefix("Could not find model") == true
        )
        #expect(harness.failure("DeleteModel", #"{"ModelName":"m"}"#)?.code == "ValidationException")
        try harness.createModel("m")
    }

    @Test(arguments: [
        #"{"ModelName":"m"}"#, #"{"ModelName":"m","Containers":[]}"#,
        #"{"ModelName":"m","PrimaryContainer":{"Image":"a"},"Containers":[{"Image":"b"}]}"#,
        #"{"ModelName":"m","PrimaryContainer":{}}"#,
    ])
    func containersMustBeGivenOneWay(_ body: String) throws {
        let harness = Harness()
        let error = try #require(harness.failure("CreateModel", body))
        #expect(error.code == "ValidationException")
        #expect(harness.failure("DescribeModel", #"{"ModelName":"m"}"#) != nil)
    }

    @Test func neitherContainerMessage() throws {
        let error = try #require(Harness().failure("CreateModel", #"{"ModelName":"m"}"#))
        #expect(error.message == #"Either PrimaryContainer or Containers must be specified for model "m"."#)
    }
}

@Suite struct EndpointConfigTests {
    @Test func missingModel() throws {
        let harness = Harness()
        try harness.createModel("present")
        let error = #expect(throws: ServiceError.self) {
            try harness.createConfig("c", variants: [("a", "present"), ("b", "Ghost")])
        }
        #expect(error?.code == "ValidationException")
        #expect(error?.message == #"Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/ghost"."#)
        #expect(harness.failure("DescribeEndpointConfig", #"{"EndpointConfigName":"c"}"#) != nil)
    }

    @Test func duplicateVariantNames() throws {
        let harness = Harness()
        try harness.createModel("m")
        let error = #expect(throws: ServiceError.self) {
            try harness.createConfig("c", variants: [("v", "m"), ("v", "m")])
        }
        #expect(error?.code == "ValidationException")
        #expect(error?.message.contains("was non-unique within the request") == true)
    }

    /// Variant names are matched exactly everywhere (routing, TargetVariant, weights), so names differing in case
    /// are two variants.
    @Test func variantNamesAreCaseSensitive() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", variants: [("Traffic", "m"), ("traffic", "m")])
        let described = try harness.call("DescribeEndpointConfig", #"{"EndpointConfigName":"c"}"#)
        #expect(described["ProductionVariants"]?.arrayValue?.count == 2)
    }

    @Test func describeDefaultsTheVariantWeight() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.call(
            "CreateEndpointConfig",
            #"""
            {"EndpointConfigName":"Config","ProductionVariants":[
              {"VariantName":"a","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":1},
              {"VariantName":"b","ModelName":"m","InstanceType":"ml.m5.large","InitialInstanceCount":2,"InitialVariantWeight":0.5}]}
            """#
        )
        let described = try harness.call("DescribeEndpointConfig", #"{"EndpointConfigName":"config"}"#)
        #expect(described["EndpointConfigName"] == .string("Config"))
        #expect(
            described["EndpointConfigArn"] == .string("arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/config")
        )
        #expect(described["CreationTime"] == .number(1_700_000_000))
        let variants = try #require(described["ProductionVariants"]?.arrayValue)
        #expect(variants.map { $0["InitialVariantWeight"] } == [.number(1), .number(0.5)])
        #expect(variants.map { $0["InitialInstanceCount"] } == [.number(1), .number(2)])
        #expect(described["Tags"] == nil)
    }

    @Test func duplicateConfig() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", model: "m")
        let error = #expect(throws: ServiceError.self) { try harness.createConfig("C", model: "m") }
        #expect(
            error?.message
                == #"Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"."#
        )
    }

    @Test func deleteAndMissing() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", model: "m")
        #expect(try harness.call("DeleteEndpointConfig", #"{"EndpointConfigName":"c"}"#) == .object([:]))
        let error = try #require(harness.failure("DeleteEndpointConfig", #"{"EndpointConfigName":"c"}"#))
        #expect(
            error.message
                == #"Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"."#
        )
    }

    @Test func variantNeedsInstancesOrServerless() throws {
        let harness = Harness()
        try harness.createModel("m")
        let error = try #require(
            harness.failure(
                "CreateEndpointConfig",
                #"{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m"}]}"#
            )
        )
        #expect(error.code == "ValidationException")
    }
}

import StraitControlPlane
import StraitCore
import StraitTestSupport
import Testing

@Suite struct TagTests {
    static let modelARN = "arn:aws:sagemaker:us-east-1:123456789012:model/m"

    func tags(_ harness: Harness, _ arn: String = TagTests.modelARN) throws -> [String] {
        let answer = try harness.call("ListTags", #"{"ResourceArn":"\#(arn)"}"#)
        return (answer["Tags"]?.arrayValue ?? []).map {
            "\($0["Key"]?.stringValue ?? "?")=\($0["Value"]?.stringValue ?? "?")"
        }
    }

    @Test func tagsGivenOnCreateAreListed() throws {
        let harness = Harness()
        try harness.createModel("m", tags: #"[{"Key":"team","Value":"ml"},{"Key":"env","Value":""}]"#)
        #expect(try tags(harness) == ["team=ml", "env="])
        let answer = try harness.call("ListTags", #"{"ResourceArn":"\#(Self.modelARN)"}"#)
        #expect(answer["NextToken"] == nil)
    }

    @Test func everyResourceTypeIsTaggable() throws {
        let harness = Harness()
        try harness.createModel("m")
        try harness.createConfig("c", variants: [("v", "m")], tags: #"[{"Key":"kind","Value":"config"}]"#)
        try harness.createEndpoint("e", config: "c", tags: #"[{"Key":"kind","Value":"endpoint"}]"#)
        #expect(try tags(harness) == [])
        #expect(try tags(harness, harness.arn(.endpointConfig, "c")) == ["kind=config"])
        #expect(try tags(harness, harness.arn(.endpoint, "e")) == ["kind=endpoint"])
    }

    @Test func addTagsOverwritesByKey() throws {
        let harness = Harness()
        try harness.createModel("m", tags: #"[{"Key":"a","Value":"1"},{"Key":"b","Value":"2"}]"#)
        let answer = try harness.call(
            "AddTags",
            #"{"ResourceArn":"\#(Self.modelARN)","Tags":[{"Key":"a","Value":"9"},{"Key":"c","Value":"3"}]}"#
        )
        #expect(answer.strings("Tags", "Key") == ["a", "c"])
        #expect(try tags(harness) == ["a=9", "b=2", "c=3"])
    }

    @Test func addTagsOnAnUppercaseARNReachesTheResource() throws {
        let harness = Harness()
        try harness.createModel("My-Model")
        try harness.call(
            "AddTags",
            #"{"ResourceArn":"arn:aws:sagemaker:us-east-1:123456789012:model/My-Model","Tags":[{"Key":"a","Value":"1"}]}"#
        )
        #expect(try tags(harness, "arn:aws:sagemaker:us-east-1:123456789012:model/my-model") == ["a=1"])
    }

    @Test func moreThanFiftyTagsOnAResource() throws {
        let harness = Harness()
        try harness.createModel("m", tags: tagList(45))
        let error = try #require(
            harness.failure("AddTags", #"{"ResourceArn":"\#(Self.modelARN)","Tags":\#(tagList(6, prefix: "new"))}"#)
        )
        #expect(error.code == "ResourceLimitExceeded")
        #expect(error.status == 400)
        #expect(try tags(harness).count == 45)

        // Overwriting keys does not count twice: 45 + 5 new is exactly the limit.
        try harness.call("AddTags", #"{"ResourceArn":"\#(Self.modelARN)","Tags":\#(tagList(45, value: "w"))}"#)
        try harness.call("AddTags", #"{"ResourceArn":"\#(Self.modelARN)","Tags":\#(tagList(5, prefix: "new"))}"#)
        #expect(try tags(harness).count == 50)
        #expect(try tags(harness).first == "k0=w0")
    }

    @Test func moreThanFiftyTagsInOneRequest() throws {
        let harness = Harness()
        try harness.createModel("m")
        let error = try #require(
            harness.failure("AddTags", #"{"ResourceArn":"\#(Self.modelARN)","Tags":\#(tagList(51))}"#)
        )
        #expect(error.code == "ValidationException")
        #expect(
            error.message.contains(
                "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
            )
        )
        let createError = try #require(
            harness.failure(
                "CreateModel",
                #"{"ModelName":"m2","PrimaryContainer":{"Image":"i"},"Tags":\#(tagList(51))}"#
            )
        )
        #expect(createError.code == "ValidationException")
    }

    @Test func deleteTags() throws {
        let harness = Harness()
        try harness.createModel(
            "m",
            tags: #"[{"Key":"a","Value":"1"},{"Key":"b","Value":"2"},{"Key":"c","Value":"3"}]"#
        )
        #expect(
            try harness.call("DeleteTags", #"{"ResourceArn":"\#(Self.modelARN)","TagKeys":["a","c","absent"]}"#)
                == .object([:])
        )
        #expect(try tags(harness) == ["b=2"])
    }

    @Test func deletingTheResourceDropsItsTags() throws {
        let harness = Harness()
        try harness.createModel("m", tags: #"[{"Key":"a","Value":"1"}]"#)
        try harness.call("DeleteModel", #"{"ModelName":"m"}"#)
        try harness.createModel("m")
        #expect(try tags(harness) == [])
    }

    @Test func unknownResource() throws {
        let harness = Harness()
        let error = try #require(harness.failure("ListTags", #"{"ResourceArn":"\#(Self.modelARN)"}"#))
        #expect(error.code == "ValidationException")
        #expect(error.message == #"Could not find model "\#(Self.modelARN)"."#)
        for operation in ["AddTags", "DeleteTags"] {
            let body =
                operation == "AddTags"
                ? #"{"ResourceArn":"\#(Self.modelARN)","Tags":[{"Key":"a","Value":"1"}]}"#
                : #"{"ResourceArn":"\#(Self.modelARN)","TagKeys":["a"]}"#
            #expect(harness.failure(operation, body)?.code == "ValidationException")
        }
    }

    @Test(arguments: [
        "arn:aws:sagemaker:us-west-2:123456789012:model/m",
        "arn:aws:sagemaker:us-east-1:999999999999:model/m",
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/m",
        "arn:aws:sagemaker:us-east-1:123456789012:model/",
        "arn:aws:sagemaker:us-east-1:123456789012:model/m/extra",
        "arn:aws-cn:sagemaker:us-east-1:123456789012:model/m",
        "arn:aws:s3:::bucket",
        "not-an-arn",
        "",
    ])
    func foreignResource(_ arn: String) throws {
        let harness = Harness()
        try harness.createModel("m")
        let error = try #require(harness.failure("ListTags", #"{"ResourceArn":"\#(arn)"}"#))
        #expect(error.code == "ValidationException")
    }
}

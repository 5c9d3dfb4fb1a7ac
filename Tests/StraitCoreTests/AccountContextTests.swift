import StraitCore
import Testing

@Suite("AccountContext")
struct AccountContextTests {
    let account = AccountContext(region: "us-east-1", accountID: "123456789012")

    @Test("arn lower-cases the name")
    func arn() {
        #expect(account.arn(.model, "My-Model") == "arn:aws:sagemaker:us-east-1:123456789012:model/my-model")
        #expect(
            account.arn(.endpointConfig, "Cfg-1") == "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/cfg-1"
        )
        #expect(account.arn(.endpoint, "EP") == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep")
    }

    @Test("parseARN reads back every resource type", arguments: ResourceType.allCases)
    func roundTrip(type: ResourceType) throws {
        let parsed = try #require(account.parseARN(account.arn(type, "Some-Name-1")))
        #expect(parsed.type == type)
        #expect(parsed.name == "some-name-1")
    }

    @Test(
        "parseARN refuses ARNs of other accounts, regions, services or types, and malformed ones",
        arguments: [
            "arn:aws:sagemaker:us-east-1:210987654321:model/m",  // other account
            "arn:aws:sagemaker:us-west-2:123456789012:model/m",  // other region
            "arn:aws:s3:us-east-1:123456789012:model/m",  // other service
            "arn:aws-cn:sagemaker:us-east-1:123456789012:model/m",  // other partition
            "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/m",  // other type
            "arn:aws:sagemaker:us-east-1:123456789012:Model/m",  // type is case-sensitive
            "arn:aws:sagemaker:us-east-1:123456789012:model",  // no name
            "arn:aws:sagemaker:us-east-1:123456789012:model/",  // empty name
            "arn:aws:sagemaker:us-east-1:123456789012:model/a/b",  // slash in name
            "arn:aws:sagemaker:us-east-1:1234567890123:model/m",  // longer account id
            "arn:aws:sagemaker:us-east-1:123456789012model/m",
            "",
            "model/m",
        ]
    )
    func rejects(arn: String) {
        #expect(account.parseARN(arn) == nil)
    }
}

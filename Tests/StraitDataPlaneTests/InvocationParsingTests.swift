import StraitAuth
import StraitCore
import Testing

@testable import StraitDataPlane

@Suite struct InvocationParsingTests {
    @Test(arguments: [
        ("/endpoints/my-endpoint/invocations", "my-endpoint"),
        ("/endpoints/e/invocations?x=1", "e"),
        ("/endpoints/A1/invocations", "A1"),
    ])
    func invocationPaths(_ uri: String, _ name: String) {
        #expect(HTTPConnectionHandler.invocationEndpoint(uri) == name)
    }

    @Test(arguments: [
        "/", "/endpoints//invocations", "/endpoints/a/b/invocations", "/endpoints/a/invocation",
        "/endpoints/a/invocations-response-stream", "endpoints/a/invocations", "/ping", "/endpoints/invocations",
        "/endpoints/a/invocationz", "/endpointz/a/invocations", "/endpoints/a/invocations/", "/x/invocations",
        "/endpoints/a?/invocations",
    ])
    func otherPaths(_ uri: String) {
        #expect(HTTPConnectionHandler.invocationEndpoint(uri) == nil)
    }

    @Test(arguments: ["a", "my-endpoint", "a--b", String(repeating: "x", count: 63)])
    func validNames(_ name: String) {
        #expect(HTTPConnectionHandler.isValidEndpointName(name))
    }

    @Test(arguments: ["", "-a", "a-", "a_b", "a%20b", "é", String(repeating: "x", count: 64), "a.b"])
    func invalidNames(_ name: String) {
        #expect(!HTTPConnectionHandler.isValidEndpointName(name))
    }

    private func isForwarded(_ name: String) -> Bool {
        Array(name.utf8).withUnsafeBufferPointer { HTTPConnectionHandler.isForwarded($0, 0..<$0.count) }
    }

    @Test func forwardedHeaders() {
        for name in [
            "content-type", "accept", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id",
            "x-amzn-sagemaker-target-model",
        ] {
            #expect(isForwarded(name), "\(name)")
        }
        for name in [
            "host", "authorization", "x-amz-date", "content-length", "x-amzn-sagemaker-target-variant",
            "accept-encoding",
            "content-typo", "x-amzn-sagemaker-custom-attribute", "",
        ] {
            #expect(!isForwarded(name), "\(name)")
        }
    }

    @Test func headerLimits() {
        typealias Headers = [(name: String, value: String)]
        var headers: Headers = [("x-amzn-sagemaker-target-variant", String(repeating: "v", count: 64))]
        #expect(HTTPConnectionHandler.headerError(HeaderFields(headers))?.message.contains("'targetVariant'") == true)
        headers = [("x-amzn-sagemaker-inference-id", "")]
        #expect(HTTPConnectionHandler.headerError(HeaderFields(headers))?.code == "ValidationError")
        headers = [("content-type", String(repeating: "t", count: 1025))]
        #expect(
            HTTPConnectionHandler.headerError(HeaderFields(headers))?.message.contains("less than or equal to 1024")
                == true
        )
        headers = [("content-type", "text/csv"), ("x-amzn-sagemaker-custom-attributes", "a=b")]
        #expect(HTTPConnectionHandler.headerError(HeaderFields(headers)) == nil)
    }
}

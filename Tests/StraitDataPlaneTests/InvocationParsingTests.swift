import NIOHTTP1
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
        #expect(InvocationHandler.invocationEndpoint(uri).map(String.init) == name)
    }

    @Test(arguments: [
        "/", "/endpoints//invocations", "/endpoints/a/b/invocations", "/endpoints/a/invocation",
        "/endpoints/a/invocations-response-stream", "endpoints/a/invocations", "/ping",
    ])
    func otherPaths(_ uri: String) {
        #expect(InvocationHandler.invocationEndpoint(uri) == nil)
    }

    @Test(arguments: ["a", "my-endpoint", "a--b", String(repeating: "x", count: 63)])
    func validNames(_ name: String) {
        #expect(InvocationHandler.isValidEndpointName(name))
    }

    @Test(arguments: ["", "-a", "a-", "a_b", "a%20b", "é", String(repeating: "x", count: 64), "a.b"])
    func invalidNames(_ name: String) {
        #expect(!InvocationHandler.isValidEndpointName(name))
    }

    @Test func headerLimits() {
        var headers = HTTPHeaders()
        headers.add(name: "X-Amzn-SageMaker-Target-Variant", value: String(repeating: "v", count: 64))
        #expect(InvocationHandler.headerError(headers)?.message.contains("'targetVariant'") == true)
        headers = HTTPHeaders()
        headers.add(name: "X-Amzn-SageMaker-Inference-Id", value: "")
        #expect(InvocationHandler.headerError(headers)?.code == "ValidationError")
        headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: String(repeating: "t", count: 1025))
        #expect(InvocationHandler.headerError(headers)?.message.contains("less than or equal to 1024") == true)
        headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/csv")
        headers.add(name: "X-Amzn-SageMaker-Custom-Attributes", value: "a=b")
        #expect(InvocationHandler.headerError(headers) == nil)
    }
}

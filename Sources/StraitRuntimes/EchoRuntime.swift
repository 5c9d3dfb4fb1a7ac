public import NIOCore

/// `strait/echo`: answers every invocation with its own body, content type and custom attributes. For tests and
/// overhead benchmarks.
public struct EchoRuntime: ModelRuntime {
    public static let name = "echo"

    public init() {}

    public var isReady: Bool { true }

    public func invoke(
        body: ByteBuffer,
        contentType: String?,
        accept: String?,
        customAttributes: String?,
        allocator: ByteBufferAllocator
    ) -> InvocationResult {
        InvocationResult(
            status: 200,
            contentType: contentType ?? "application/octet-stream",
            body: body,
            customAttributes: customAttributes
        )
    }
}

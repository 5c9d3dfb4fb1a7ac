/// An error in the shape AWS services answer with: an error code (the `__type` of AWS JSON), a message, and the
/// HTTP status it travels with.
///
/// Every module reports failures a client should see as a `ServiceError`; the HTTP layer maps it to a response in
/// one place. Codes are strings on purpose: they are the wire names SageMaker clients match on (boto3's waiters
/// match `ValidationException`), and new ones must not break callers.
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let status: Int
    /// Extra members of the error document (for example sagemaker-runtime's `OriginalStatusCode`).
    public let extraFields: [String: JSONValue]

    public init(code: String, message: String, status: Int = 400, extraFields: [String: JSONValue] = [:]) {
        self.code = code
        self.message = message
        self.status = status
        self.extraFields = extraFields
    }

    public var description: String { "\(code): \(message)" }

    /// `ValidationException`, the error SageMaker gives for bad parameters and for missing resources.
    public static func validation(_ message: String) -> ServiceError {
        ServiceError(code: "ValidationException", message: message)
    }

    /// `ResourceLimitExceeded`: a quota would be passed.
    public static func resourceLimitExceeded(_ message: String) -> ServiceError {
        ServiceError(code: "ResourceLimitExceeded", message: message)
    }

    /// `ResourceInUse`: the resource is used by another one.
    public static func resourceInUse(_ message: String) -> ServiceError {
        ServiceError(code: "ResourceInUse", message: message)
    }

    /// `SerializationException`: the body is not the JSON the operation takes.
    public static func serialization(_ message: String) -> ServiceError {
        ServiceError(code: "SerializationException", message: message)
    }

    /// `InternalFailure`: something went wrong on our side; the message must not leak internals.
    public static func internalFailure(
        _ message: String = "An internal error occurred. Try the request again."
    )
        -> ServiceError
    {
        ServiceError(code: "InternalFailure", message: message, status: 500)
    }

    /// The error document as AWS JSON 1.1 writes it.
    public var jsonBody: JSONValue {
        var members = extraFields
        members["__type"] = .string(code)
        members["message"] = .string(message)
        return .object(members)
    }
}

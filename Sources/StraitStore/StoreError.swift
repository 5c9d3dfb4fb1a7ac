/// Why a store operation failed.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Equatable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable { case alreadyExists, limitExceeded, corrupt, unavailable }
        fileprivate let base: Base
        public static let alreadyExists = Code(base: .alreadyExists)
        public static let limitExceeded = Code(base: .limitExceeded)
        public static let corrupt = Code(base: .corrupt)
        public static let unavailable = Code(base: .unavailable)
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

public import StraitCore

/// A Universal Binary JSON (UBJSON draft 12) parser: the format XGBoost writes for `.ubj` models.
///
/// Reads every marker XGBoost and other writers use — optimized containers (`$` type, `#` count) included — into a
/// ``JSONValue``. Counts are checked against the bytes that remain before anything is allocated, and nesting is
/// bounded, so a truncated or hostile file is an error, never a trap or a huge allocation.
public struct UBJSONParser {
    public struct Failure: Error, Sendable, Equatable {
        public let message: String
        public let offset: Int
    }

    public static let maximumDepth = 64

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses one UBJSON value; trailing bytes are an error.
    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        var parser = UBJSONParser(bytes)
        let value = try parser.parseValue(marker: try parser.nextMarker())
        guard parser.index == bytes.count else { throw parser.failure("Unexpected bytes after the UBJSON value") }
        return value
    }

    private func failure(_ message: String) -> Failure { Failure(message: message, offset: index) }

    private mutating func nextMarker() throws(Failure) -> UInt8 {
        while index < bytes.count, bytes[index] == UInt8(ascii: "N") { index += 1 }  // no-op markers
        guard index < bytes.count else { throw failure("Unexpected end of UBJSON data") }
        defer { index += 1 }
        return bytes[index]
    }

    private mutating func take(_ count: Int) throws(Failure) -> Int {
        guard count >= 0, count <= bytes.count - index else { throw failure("Unexpected end of UBJSON data") }
        defer { index += count }
        return index
    }

    private mutating func bigEndian(_ width: Int) throws(Failure) -> UInt64 {
        let start = try take(width)
        var value: UInt64 = 0
        for offset in 0..<width { value = value << 8 | UInt64(bytes[start + offset]) }
        return value
    }

    /// Reads an integer of the type `marker` names.
    private mutating func integer(marker: UInt8) throws(Failure) -> Int64? {
        switch marker {
        case UInt8(ascii: "i"): return Int64(Int8(truncatingIfNeeded: try bigEndian(1)))
        case UInt8(ascii: "U"): return Int64(try bigEndian(1))
        case UInt8(ascii: "I"): return Int64(Int16(truncatingIfNeeded: try bigEndian(2)))
        case UInt8(ascii: "l"): return Int64(Int32(truncatingIfNeeded: try bigEndian(4)))
        case UInt8(ascii: "L"): return Int64(bitPattern: try bigEndian(8))
        default: return nil
        }
    }

    private mutating func length() throws(Failure) -> Int {
        let marker = try nextMarker()
        guard let value = try integer(marker: marker) else { throw failure("Expected an integer length") }
        guard value >= 0, value <= Int64(bytes.count - index) else { throw failure("Length out of range") }
        return Int(value)
    }

    private mutating func string() throws(Failure) -> String {
        let count = try length()
        let start = try take(count)
        guard let text = String(validating: bytes[start..<start + count], as: UTF8.self) else {
            throw failure("String is not valid UTF-8")
        }
        return text
    }

    /// The smallest number of bytes one value of `marker`'s type takes, to bound declared counts.
    private static func minimumSize(of marker: UInt8) -> Int {
        switch marker {
        case UInt8(ascii: "I"): 2
        case UInt8(ascii: "l"), UInt8(ascii: "d"): 4
        case UInt8(ascii: "L"), UInt8(ascii: "D"): 8
        default: 1
        }
    }

    private mutating func parseValue(marker: UInt8) throws(Failure) -> JSONValue {
        if let value = try integer(marker: marker) { return .number(Double(value)) }
        switch marker {
        case UInt8(ascii: "Z"): return .null
        case UInt8(ascii: "T"): return .bool(true)
        case UInt8(ascii: "F"): return .bool(false)
        case UInt8(ascii: "d"): return .number(Double(Float(bitPattern: UInt32(try bigEndian(4)))))
        case UInt8(ascii: "D"): return .number(Double(bitPattern: try bigEndian(8)))
        case UInt8(ascii: "C"): return .string(String(UnicodeScalar(UInt8(try bigEndian(1)))))
        case UInt8(ascii: "S"): return .string(try string())
        case UInt8(ascii: "H"):
            let text = try string()
            guard let number = Double(text) else { throw failure("Invalid high-precision number") }
            return .number(number)
        case UInt8(ascii: "["): return try parseContainer(isObject: false)
        case UInt8(ascii: "{"): return try parseContainer(isObject: true)
        default: throw failure("Unknown UBJSON marker 0x\(String(marker, radix: 16))")
        }
    }

    private mutating func parseContainer(isObject: Bool) throws(Failure) -> JSONValue {
        depth += 1
        guard depth <= Self.maximumDepth else { throw failure("UBJSON nested too deeply") }
        defer { depth -= 1 }
        var elementType: UInt8?
        var count: Int?
        if index < bytes.count, bytes[index] == UInt8(ascii: "$") {
            index += 1
            elementType = try nextMarker()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "#") else {
                throw failure("A typed container must declare its count")
            }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "#") {
            index += 1
            let declared = try length()
            let perElement = max(elementType.map(Self.minimumSize(of:)) ?? 1, 1)
            guard declared <= (bytes.count - index) / perElement else {
                throw failure("Container count \(declared) exceeds the remaining data")
            }
            count = declared
        }
        var elements: [JSONValue] = []
        var members: [String: JSONValue] = [:]
        if let count { if isObject { members.reserveCapacity(count) } else { elements.reserveCapacity(count) } }
        var read = 0
        while true {
            if let count {
                if read == count { break }
            } else {
                guard index < bytes.count else { throw failure("Unexpected end of UBJSON data") }
                if bytes[index] == UInt8(ascii: isObject ? "}" : "]") {
                    index += 1
                    break
                }
            }
            let key = isObject ? try string() : ""
            let marker: UInt8
            if let elementType { marker = elementType } else { marker = try nextMarker() }
            let value = try parseValue(marker: marker)
            if isObject { members[key] = value } else { elements.append(value) }
            read += 1
        }
        return isObject ? .object(members) : .array(elements)
    }
}

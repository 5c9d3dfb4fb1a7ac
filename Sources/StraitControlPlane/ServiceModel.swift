import Foundation
import StraitCore

/// The input shapes of the SageMaker operations Strait serves, read from botocore's service model (generated into
/// `Generated/SageMakerShapes.swift`), and the validation every request goes through before it is acted on.
///
/// Validation answers as SageMaker's front end does: type errors are a `SerializationException`; constraint
/// failures are collected into one `ValidationException` —
/// `2 validation errors detected: Value 'x' at 'endpointName' failed to satisfy constraint: …; …`.
final class ServiceModel: Sendable {
    enum Shape: Sendable {
        case structure(members: [(name: String, shape: String)], required: Set<String>)
        case list(member: String, min: Int?, max: Int?)
        case map(key: String, value: String, min: Int?, max: Int?)
        case string(min: Int?, max: Int?, pattern: String?, enumValues: [String]?)
        case integer(min: Double?, max: Double?)
        case float(min: Double?, max: Double?)
        case boolean
        case timestamp
    }

    let operations: [String: String]
    let shapes: [String: Shape]
    let botocoreVersion: String
    private let patterns: [String: NSRegularExpression]

    static let shared: ServiceModel = {
        do { return try ServiceModel(json: sageMakerInputShapesJSON) } catch {
            // The generated model is part of the binary; failing to read it is a build defect, not bad input.
            preconditionFailure("The embedded SageMaker service model is unreadable: \(error)")
        }
    }()

    init(json: String) throws {
        let document = try JSONParser.parse(json)
        guard let operations = document["operations"]?.objectValue, let shapes = document["shapes"]?.objectValue
        else { throw ServiceError.internalFailure("The service model has no operations or shapes.") }
        self.operations = operations.compactMapValues(\.stringValue)
        self.botocoreVersion = document["botocoreVersion"]?.stringValue ?? "unknown"
        var parsed: [String: Shape] = [:]
        var patterns: [String: NSRegularExpression] = [:]
        for (name, spec) in shapes {
            let min = spec["min"]?.doubleValue
            let max = spec["max"]?.doubleValue
            switch spec["type"]?.stringValue {
            case "structure":
                let members = (spec["members"]?.objectValue ?? [:]).compactMap { key, value in
                    value.stringValue.map { (name: key, shape: $0) }
                }.sorted { $0.name < $1.name }
                let required = Set((spec["required"]?.arrayValue ?? []).compactMap(\.stringValue))
                parsed[name] = .structure(members: members, required: required)
            case "list":
                parsed[name] = .list(
                    member: spec["member"]?.stringValue ?? "",
                    min: min.map(Int.init),
                    max: max.map(Int.init)
                )
            case "map":
                parsed[name] = .map(
                    key: spec["key"]?.stringValue ?? "",
                    value: spec["value"]?.stringValue ?? "",
                    min: min.map(Int.init),
                    max: max.map(Int.init)
                )
            case "string":
                let pattern = spec["pattern"]?.stringValue
                if let pattern {
                    patterns[pattern] = try NSRegularExpression(pattern: "^(?:\(pattern))$", options: [])
                }
                parsed[name] = .string(
                    min: min.map(Int.init),
                    max: max.map(Int.init),
                    pattern: pattern,
                    enumValues: spec["enum"]?.arrayValue?.compactMap(\.stringValue)
                )
            case "integer", "long": parsed[name] = .integer(min: min, max: max)
            case "float", "double": parsed[name] = .float(min: min, max: max)
            case "boolean": parsed[name] = .boolean
            case "timestamp": parsed[name] = .timestamp
            default: throw ServiceError.internalFailure("Shape \(name) has an unsupported type.")
            }
        }
        self.shapes = parsed
        self.patterns = patterns
    }

    /// Checks a request document against an operation's input shape.
    /// - Throws: `SerializationException` for a value of the wrong JSON type, `ValidationException` listing every
    ///   constraint the request fails.
    func validate(_ input: JSONValue, operation: String) throws(ServiceError) {
        guard let shape = operations[operation] else { throw ServiceError.internalFailure() }
        var failures: [String] = []
        try check(input, shapeName: shape, path: "", failures: &failures)
        guard !failures.isEmpty else { return }
        let count = failures.count == 1 ? "1 validation error detected" : "\(failures.count) validation errors detected"
        throw .validation("\(count): \(failures.joined(separator: "; "))")
    }

    private func check(
        _ value: JSONValue,
        shapeName: String,
        path: String,
        failures: inout [String]
    ) throws(ServiceError) {
        guard let shape = shapes[shapeName] else { return }
        func fail(_ constraint: String) {
            failures.append("Value \(Self.render(value)) at '\(path)' failed to satisfy constraint: \(constraint)")
        }
        switch shape {
        case .structure(let members, let required):
            guard case .object(let object) = value else { throw typeError(value, expected: "an object", path: path) }
            for member in members {
                let memberPath = path.isEmpty ? Self.lowerCamel(member.name) : "\(path).\(Self.lowerCamel(member.name))"
                guard let memberValue = object[member.name], memberValue != .null else {
                    if required.contains(member.name) {
                        failures.append(
                            "Value null at '\(memberPath)' failed to satisfy constraint: Member must not be null"
                        )
                    }
                    continue
                }
                try check(memberValue, shapeName: member.shape, path: memberPath, failures: &failures)
            }
        case .list(let member, let min, let max):
            guard case .array(let items) = value else { throw typeError(value, expected: "a list", path: path) }
            if let min, items.count < min { fail("Member must have length greater than or equal to \(min)") }
            if let max, items.count > max { fail("Member must have length less than or equal to \(max)") }
            for (index, item) in items.enumerated() {
                try check(item, shapeName: member, path: "\(path).\(index + 1).member", failures: &failures)
            }
        case .map(let key, let valueShape, let min, let max):
            guard case .object(let entries) = value else { throw typeError(value, expected: "a map", path: path) }
            if let min, entries.count < min { fail("Member must have length greater than or equal to \(min)") }
            if let max, entries.count > max { fail("Member must have length less than or equal to \(max)") }
            var keyFailures: [String] = []
            var valueFailures: [String] = []
            for (entryKey, entryValue) in entries.sorted(by: { $0.key < $1.key }) {
                try check(.string(entryKey), shapeName: key, path: path, failures: &keyFailures)
                guard entryValue != .null else { continue }
                try check(entryValue, shapeName: valueShape, path: path, failures: &valueFailures)
            }
            if !keyFailures.isEmpty { fail("Map keys must satisfy constraint: [\(Self.constraints(keyFailures))]") }
            if !valueFailures.isEmpty {
                fail("Map value must satisfy constraint: [\(Self.constraints(valueFailures))]")
            }
        case .string(let min, let max, let pattern, let enumValues):
            guard case .string(let text) = value else { throw typeError(value, expected: "a string", path: path) }
            let length = text.unicodeScalars.count
            if let min, length < min { fail("Member must have length greater than or equal to \(min)") }
            if let max, length > max { fail("Member must have length less than or equal to \(max)") }
            if let enumValues, !enumValues.contains(text) {
                fail("Member must satisfy enum value set: [\(enumValues.joined(separator: ", "))]")
            }
            if let pattern, let regex = patterns[pattern],
                regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil
            {
                fail("Member must satisfy regular expression pattern: ^\(pattern)")
            }
        case .integer(let min, let max):
            guard case .number(let number) = value else { throw typeError(value, expected: "an integer", path: path) }
            guard number.rounded() == number else { throw typeError(value, expected: "an integer", path: path) }
            if let min, number < min {
                fail("Member must have value greater than or equal to \(JSONValue.number(min).serialized())")
            }
            if let max, number > max {
                fail("Member must have value less than or equal to \(JSONValue.number(max).serialized())")
            }
        case .float(let min, let max):
            guard case .number(let number) = value else { throw typeError(value, expected: "a number", path: path) }
            if let min, number < min {
                fail("Member must have value greater than or equal to \(JSONValue.number(min).serialized())")
            }
            if let max, number > max {
                fail("Member must have value less than or equal to \(JSONValue.number(max).serialized())")
            }
        case .boolean:
            guard case .bool = value else { throw typeError(value, expected: "a boolean", path: path) }
        case .timestamp:
            switch value {
            case .number: break
            case .string(let text) where Timestamps.parse(text) != nil: break
            default: throw typeError(value, expected: "a timestamp (seconds since the epoch)", path: path)
            }
        }
    }

    private func typeError(_ value: JSONValue, expected: String, path: String) -> ServiceError {
        let place = path.isEmpty ? "the request body" : "'\(path)'"
        return .serialization("Expected \(expected) for \(place) but found \(value.typeName).")
    }

    /// The constraint part of nested failures, for map keys and values.
    private static func constraints(_ failures: [String]) -> String {
        failures.map { failure in
            failure.range(of: "failed to satisfy constraint: ").map { String(failure[$0.upperBound...]) } ?? failure
        }.joined(separator: ", ")
    }

    /// How Coral prints a value in a validation message.
    static func render(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .string(let text): "'\(text.count > 256 ? String(text.prefix(256)) + "…" : text)'"
        case .array(let items):
            "'[\(items.map { render($0).trimmingCharacters(in: CharacterSet(charactersIn: "'")) }.joined(separator: ", "))]'"
        case .object: "'{…}'"
        default: "'\(value.serialized())'"
        }
    }

    static func lowerCamel(_ name: String) -> String {
        guard let first = name.first else { return name }
        return first.lowercased() + name.dropFirst()
    }
}

/// Timestamps on the wire: AWS JSON sends seconds since the epoch; ISO 8601 text is accepted too.
enum Timestamps {
    static func parse(_ value: JSONValue) -> Date? {
        switch value {
        case .number(let seconds): Date(timeIntervalSince1970: seconds)
        case .string(let text): parse(text)
        default: nil
        }
    }

    static func parse(_ text: String) -> Date? {
        if let seconds = Double(text) { return Date(timeIntervalSince1970: seconds) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func json(_ date: Date) -> JSONValue {
        // Milliseconds, as SageMaker answers.
        .number((date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}

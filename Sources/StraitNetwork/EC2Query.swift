public import StraitCore

/// Reads an EC2 query-protocol request (`Action=CreateVpc&Version=2016-11-15&CidrBlock=…`, form-encoded) into a
/// JSON document keyed by botocore's member names, walking the operation's input shape: `Filter.1.Value.2` becomes
/// `{"Filters": [{"Values": [_, "…"]}]}`. Unknown parameters, bad numbers and booleans, values outside an enum and
/// missing required members are EC2's errors; nothing from the wire can trap.
public enum EC2Query {
    /// The most parameters one request may carry.
    static let maximumParameters = 10_000
    /// The most dotted components one parameter name may have (the deepest EC2 input needs 5).
    static let maximumNameComponents = 12

    /// A parsed request: the action and its input document.
    public struct Request: Sendable {
        public let action: String
        public let input: JSONValue
    }

    /// Parses a form-encoded body.
    public static func parse(_ body: [UInt8]) throws(ServiceError) -> Request {
        let root = QueryNode()
        var count = 0
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= maximumParameters else {
                throw EC2Errors.invalidParameterValue("The request has more than \(maximumParameters) parameters.")
            }
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = percentDecode(parts[0]), let value = percentDecode(parts.count > 1 ? parts[1] : []) else {
                throw EC2Errors.invalidParameterValue("The request is not valid form-encoded text.")
            }
            let components = key.split(separator: ".", omittingEmptySubsequences: false)
            guard components.count <= maximumNameComponents else {
                throw EC2Errors.unknownParameter(key)
            }
            var node = root
            for component in components {
                node = node.child(String(component))
            }
            guard node.value == nil else {
                throw EC2Errors.invalidParameterValue("The parameter \(key.prefix(100)) is given more than once.")
            }
            node.value = value
        }
        guard let action = root.children["Action"]?.value, !action.isEmpty else {
            throw ServiceError(code: "MissingAction", message: "The request must contain the parameter Action.")
        }
        root.children["Action"]?.visited = true
        root.children["Version"]?.visited = true
        let model = EC2Model.shared
        guard let operation = model.operations[action] else {
            throw ServiceError(
                code: "InvalidAction",
                message: "The action \(action.prefix(100)) is not valid for this web service."
            )
        }
        let input = try decodeStructure(operation.input, node: root, model: model, path: "") ?? .object([:])
        if let unknown = root.firstUnvisited(path: "") {
            throw EC2Errors.unknownParameter(unknown)
        }
        return Request(action: action, input: input)
    }

    private static func decode(
        _ shapeName: String,
        node: QueryNode,
        model: EC2Model,
        path: String
    ) throws(ServiceError) -> JSONValue? {
        guard let shape = model.shapes[shapeName] else { return nil }
        if shape.type == "structure" || shape.type == "list", node.value != nil {
            throw EC2Errors.unknownParameter(path)
        }
        switch shape.type {
        case "structure":
            return try decodeStructure(shapeName, node: node, model: model, path: path)
        case "list":
            guard let member = shape.member else { return nil }
            node.visited = true
            var indices: [(Int, QueryNode)] = []
            for (key, child) in node.children {
                guard let index = Int(key), index >= 1, String(index) == key else {
                    throw EC2Errors.invalidParameterValue("The parameter \(path).\(key) is not a valid list index.")
                }
                indices.append((index, child))
            }
            var elements: [JSONValue] = []
            for (index, child) in indices.sorted(by: { $0.0 < $1.0 }) {
                if let element = try decode(member.shape, node: child, model: model, path: "\(path).\(index)") {
                    elements.append(element)
                }
            }
            return .array(elements)
        default:
            guard let text = node.value else { return nil }
            node.visited = true
            return try scalar(text, shape: shape, path: path)
        }
    }

    private static func decodeStructure(
        _ shapeName: String,
        node: QueryNode,
        model: EC2Model,
        path: String
    ) throws(ServiceError) -> JSONValue? {
        guard let shape = model.shapes[shapeName] else { return nil }
        node.visited = true
        var members: [String: JSONValue] = [:]
        for (name, reference) in shape.members {
            let key = reference.queryKey(member: name)
            guard let child = node.children[key] else { continue }
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            if let value = try decode(reference.shape, node: child, model: model, path: childPath) {
                members[name] = value
            }
        }
        for name in shape.required where members[name] == nil {
            let reference = shape.members.first { $0.name == name }?.reference
            throw EC2Errors.missingParameter(reference?.queryKey(member: name) ?? name)
        }
        return .object(members)
    }

    private static func scalar(_ text: String, shape: EC2Shape, path: String) throws(ServiceError) -> JSONValue {
        switch shape.type {
        case "integer", "long":
            guard let value = Int(text), value.magnitude < 1 << 53 else {
                throw EC2Errors.invalidParameterValue("Value (\(text)) for parameter \(path) is invalid.")
            }
            return .number(Double(value))
        case "boolean":
            switch text.lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default:
                throw EC2Errors.invalidParameterValue(
                    "Value (\(text)) for parameter \(path) is invalid. Expected: 'true' or 'false'."
                )
            }
        case "double", "float":
            guard let value = Double(text), value.isFinite else {
                throw EC2Errors.invalidParameterValue("Value (\(text)) for parameter \(path) is invalid.")
            }
            return .number(value)
        default:
            if let allowed = shape.enumValues, !allowed.contains(text) {
                throw EC2Errors.invalidParameterValue(
                    "Value (\(text)) for parameter \(path) is invalid. Valid values: \(allowed.joined(separator: ", "))."
                )
            }
            return .string(text)
        }
    }

    /// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the result must be UTF-8.
    static func percentDecode(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard bytes.distance(from: index, to: bytes.endIndex) >= 3, let high = bytes[index + 1].hexDigitValue,
                    let low = bytes[index + 2].hexDigitValue
                else { return nil }
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// One component of the dotted parameter names: `Filter` → `1` → `Value` → `2`.
private final class QueryNode {
    var value: String?
    var children: [String: QueryNode] = [:]
    var visited = false

    func child(_ key: String) -> QueryNode {
        if let existing = children[key] { return existing }
        let node = QueryNode()
        children[key] = node
        return node
    }

    /// The first parameter (in name order) the walk did not use.
    func firstUnvisited(path: String) -> String? {
        for key in children.keys.sorted() {
            guard let child = children[key] else { continue }
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            if !child.visited { return childPath }
            if let deeper = child.firstUnvisited(path: childPath) { return deeper }
        }
        return nil
    }
}

/// EC2's error codes, with its wording.
public enum EC2Errors {
    public static func invalidParameterValue(_ message: String) -> ServiceError {
        ServiceError(code: "InvalidParameterValue", message: message)
    }

    public static func invalidParameter(_ message: String) -> ServiceError {
        ServiceError(code: "InvalidParameter", message: message)
    }

    /// A parameter the operation does not take (names from the wire are cut to 100 characters).
    public static func unknownParameter(_ name: some StringProtocol) -> ServiceError {
        ServiceError(code: "UnknownParameter", message: "The parameter \(name.prefix(100)) is not recognized")
    }

    public static func missingParameter(_ name: String) -> ServiceError {
        ServiceError(code: "MissingParameter", message: "The request must contain the parameter \(name)")
    }

    public static func dependencyViolation(_ message: String) -> ServiceError {
        ServiceError(code: "DependencyViolation", message: message)
    }
}

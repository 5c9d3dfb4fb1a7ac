import StraitCore

/// A reference to a shape from a structure member or a list: the target shape and its wire names.
struct EC2MemberReference: Sendable {
    let shape: String
    let locationName: String?
    let queryName: String?

    /// The name botocore's EC2 serializer gives the member in a query: `queryName`, else `locationName` with its
    /// first letter upper-cased, else the member's own name.
    func queryKey(member: String) -> String {
        if let queryName { return queryName }
        if let locationName, let first = locationName.first { return first.uppercased() + locationName.dropFirst() }
        return member
    }

    /// The element name in an XML answer: `locationName`, else the member's own name.
    func xmlName(member: String) -> String { locationName ?? member }
}

/// One shape of botocore's EC2 model, reduced to what the query reader and the XML writer need.
struct EC2Shape: Sendable {
    let type: String
    /// Structure members in the model's order.
    let members: [(name: String, reference: EC2MemberReference)]
    let member: EC2MemberReference?
    let required: [String]
    let enumValues: [String]?
}

/// botocore's EC2 model for the operations Strait serves (`Generated/EC2Shapes.swift`), parsed once.
struct EC2Model: Sendable {
    let apiVersion: String
    let xmlNamespace: String
    let operations: [String: (input: String, output: String?)]
    let shapes: [String: EC2Shape]

    static let shared: EC2Model = {
        guard let document = try? JSONParser.parse(ec2ShapesJSON) else {
            preconditionFailure("Generated/EC2Shapes.swift does not hold valid JSON: rerun the generator")
        }
        return EC2Model(document)
    }()

    init(_ document: JSONValue) {
        apiVersion = document["apiVersion"]?.stringValue ?? ""
        xmlNamespace = document["xmlNamespace"]?.stringValue ?? ""
        var operations: [String: (input: String, output: String?)] = [:]
        for (name, entry) in document["operations"]?.objectValue ?? [:] {
            operations[name] = (entry["input"]?.stringValue ?? "", entry["output"]?.stringValue)
        }
        self.operations = operations
        func reference(_ value: JSONValue?) -> EC2MemberReference? {
            guard let value, let shape = value["shape"]?.stringValue else { return nil }
            return EC2MemberReference(
                shape: shape,
                locationName: value["locationName"]?.stringValue,
                queryName: value["queryName"]?.stringValue
            )
        }
        var shapes: [String: EC2Shape] = [:]
        for (name, shape) in document["shapes"]?.objectValue ?? [:] {
            let members = (shape["members"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.compactMap { key, value in
                reference(value).map { (name: key, reference: $0) }
            }
            shapes[name] = EC2Shape(
                type: shape["type"]?.stringValue ?? "string",
                members: members,
                member: reference(shape["member"]),
                required: (shape["required"]?.arrayValue ?? []).compactMap(\.stringValue),
                enumValues: shape["enum"]?.arrayValue?.compactMap(\.stringValue)
            )
        }
        self.shapes = shapes
    }
}

import StraitCore
import StraitStore

/// AddTags, ListTags and DeleteTags on models, endpoint configs and endpoints of this account and region.
extension ControlPlane {
    func addTags(_ request: Request) throws(ServiceError) -> JSONValue {
        let arn = try taggableResource(request)
        let tags = request.tags()
        try storing { () throws(StoreError) in try store.addTags(tags, to: arn, limit: Self.tagLimit) }
        return .object(["Tags": .array(tags.map(Self.json))])
    }

    func listTags(_ request: Request) throws(ServiceError) -> JSONValue {
        let arn = try taggableResource(request)
        let tags = try storing { () throws(StoreError) in try store.tags(of: arn) }
        let maxResults = request["MaxResults"]?.intValue ?? 50
        var start = 0
        if let token = request.string("NextToken"), !token.isEmpty {
            guard let offset = Int(token), offset >= 0, offset <= tags.count else {
                throw .validation("Invalid pagination token \"\(token)\". Use the NextToken of the previous response.")
            }
            start = offset
        }
        let end = min(start + maxResults, tags.count)
        var result: [String: JSONValue] = ["Tags": .array(tags[start..<end].map(Self.json))]
        if end < tags.count { result["NextToken"] = .string(String(end)) }
        return .object(result)
    }

    func deleteTags(_ request: Request) throws(ServiceError) -> JSONValue {
        let arn = try taggableResource(request)
        let keys = (request["TagKeys"]?.arrayValue ?? []).compactMap(\.stringValue)
        try storing { () throws(StoreError) in try store.deleteTags(keys: keys, from: arn) }
        return .object([:])
    }

    /// The stored ARN of the resource a tagging request names; a ValidationException if there is none.
    private func taggableResource(_ request: Request) throws(ServiceError) -> String {
        let arn = try request.required("ResourceArn")
        guard let (type, name) = account.parseARN(arn) else {
            throw .validation(
                "Could not find resource \"\(arn)\". Strait tags models, endpoint configs and endpoints of \(account.region), account \(account.accountID)."
            )
        }
        let stored: String? = try storing { () throws(StoreError) -> String? in
            switch type {
            case .endpoint: try store.endpoint(named: name)?.arn
            case .model, .endpointConfig: try store.document(type, named: name)?.arn
            }
        }
        guard let stored, stored == arn.lowercased() || stored == arn else { throw notFound(type, name) }
        return stored
    }

    static func json(_ tag: Tag) -> JSONValue {
        .object(["Key": .string(tag.key), "Value": .string(tag.value)])
    }
}

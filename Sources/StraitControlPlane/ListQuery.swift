import Foundation
import StraitCore

/// One resource in a List operation: what it is filtered and sorted by, and what the list shows of it.
struct ListItem {
    let name: String
    let creationTime: Date
    let lastModifiedTime: Date?
    let status: String?
    let summary: JSONValue
}

/// The filters, order and page of a List operation: NameContains, Creation/LastModified time bounds, StatusEquals,
/// SortBy (Name, CreationTime, Status), SortOrder, MaxResults and NextToken.
///
/// Pages are cut by a cursor (the sort key and name of the last item shown), not an offset, so resources created or
/// deleted between calls do not make a page repeat or skip others.
struct ListQuery {
    static let defaultMaxResults = 10

    let nameContains: String?
    let creationTimeBefore: Date?
    let creationTimeAfter: Date?
    let lastModifiedTimeBefore: Date?
    let lastModifiedTimeAfter: Date?
    let statusEquals: String?
    let sortBy: String
    let ascending: Bool
    let maxResults: Int
    let nextToken: String?

    init(_ request: Request) {
        nameContains = request.string("NameContains")
        creationTimeBefore = request.date("CreationTimeBefore")
        creationTimeAfter = request.date("CreationTimeAfter")
        lastModifiedTimeBefore = request.date("LastModifiedTimeBefore")
        lastModifiedTimeAfter = request.date("LastModifiedTimeAfter")
        statusEquals = request.string("StatusEquals")
        sortBy = request.string("SortBy") ?? "CreationTime"
        ascending = request.string("SortOrder") == "Ascending"
        maxResults = request["MaxResults"]?.intValue ?? Self.defaultMaxResults
        nextToken = request.string("NextToken").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A page of the matching items, as `{key: [...], "NextToken": ...}`.
    func page(_ items: [ListItem], key: String) throws(ServiceError) -> JSONValue {
        let matching = items.filter(matches).sorted(by: precedes)
        var start = 0
        if let nextToken {
            guard let cursor = Cursor(token: nextToken, sortBy: sortBy) else {
                throw .validation(
                    "Invalid pagination token \"\(nextToken)\". Use the NextToken of the previous response."
                )
            }
            start = matching.firstIndex { precedes(cursor.item, $0) } ?? matching.count
        }
        let end = min(start + maxResults, matching.count)
        var result: [String: JSONValue] = [key: .array(matching[start..<end].map(\.summary))]
        if end < matching.count, end > start {
            result["NextToken"] = .string(Cursor(item: matching[end - 1], sortBy: sortBy).token)
        }
        return .object(result)
    }

    private func matches(_ item: ListItem) -> Bool {
        if let nameContains, !nameContains.isEmpty, item.name.range(of: nameContains, options: .caseInsensitive) == nil
        {
            return false
        }
        if let creationTimeBefore, !(item.creationTime < creationTimeBefore) { return false }
        if let creationTimeAfter, !(item.creationTime > creationTimeAfter) { return false }
        if let lastModifiedTimeBefore, let modified = item.lastModifiedTime, !(modified < lastModifiedTimeBefore) {
            return false
        }
        if let lastModifiedTimeAfter, let modified = item.lastModifiedTime, !(modified > lastModifiedTimeAfter) {
            return false
        }
        if let statusEquals, item.status != statusEquals { return false }
        return true
    }

    /// The order of the list: by the sort key in the chosen direction, then by lower-cased name for a total order.
    private func precedes(_ a: ListItem, _ b: ListItem) -> Bool {
        let keyA = Self.sortKey(a, sortBy)
        let keyB = Self.sortKey(b, sortBy)
        if keyA != keyB { return ascending ? keyA < keyB : keyB < keyA }
        return ascending ? a.name.lowercased() < b.name.lowercased() : b.name.lowercased() < a.name.lowercased()
    }

    static func sortKey(_ item: ListItem, _ sortBy: String) -> SortKey {
        switch sortBy {
        case "Name": .text(item.name.lowercased())
        case "Status": .text(item.status ?? "")
        default: .time(item.creationTime.timeIntervalSince1970)
        }
    }

    enum SortKey: Comparable {
        case time(Double)
        case text(String)
    }

    /// The position after which the next page starts, carried in NextToken.
    struct Cursor {
        let item: ListItem
        let sortBy: String

        init(item: ListItem, sortBy: String) {
            self.item = item
            self.sortBy = sortBy
        }

        /// The token: base64 of `sortBy`, the sort keys and the name, so a token is only read back under the same sort.
        var token: String {
            let document: JSONValue = .object([
                "b": .string(sortBy), "n": .string(item.name), "t": .number(item.creationTime.timeIntervalSince1970),
                "s": .string(item.status ?? ""),
            ])
            return Data(document.serialized().utf8).base64EncodedString()
        }

        init?(token: String, sortBy: String) {
            guard token.count <= 8192, let data = Data(base64Encoded: token),
                let document = try? JSONParser.parse(Array(data)), document["b"]?.stringValue == sortBy,
                let name = document["n"]?.stringValue, let time = document["t"]?.doubleValue,
                let status = document["s"]?.stringValue
            else { return nil }
            self.sortBy = sortBy
            item = ListItem(
                name: name,
                creationTime: Date(timeIntervalSince1970: time),
                lastModifiedTime: nil,
                status: status,
                summary: .null
            )
        }
    }
}

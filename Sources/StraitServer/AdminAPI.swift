import Foundation
import NIOHTTP1
import StraitCore
import StraitDataPlane
import StraitStore
import StraitSupervisor

/// Strait's own read-only API for people, behind `strait endpoints`, `strait instances` and `strait logs`: `GET`
/// under `/strait/` on the regional endpoint, SigV4-signed like every other call.
///
/// - `GET /strait/endpoints` → `{"Endpoints": [{EndpointName, EndpointStatus, Instances, InService}]}`
/// - `GET /strait/endpoints/NAME/instances` → `{"Instances": [{InstanceId, VariantName, Zone, Address, Port, State,
///   Pid, Restarts, StartTime, UptimeSeconds}]}`
/// - `GET /strait/endpoints/NAME/logs?instance=ID&offset=N` → the instance's log from byte N (at most 1 MiB), with
///   `x-strait-log-offset` giving where the next read starts. A log that was rotated since restarts at 0.
struct AdminAPI: Sendable {
    static let prefix = "/strait/"
    static let maximumLogChunk = 1 << 20

    let store: any ResourceStore
    let reconciler: ProcessReconciler
    let dataDirectory: String

    func respond(path: Substring, query: Substring) async throws(ServiceError) -> BufferedResponse {
        let parts = path.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where parts[0] == "endpoints":
            return try await endpoints()
        case 3 where parts[0] == "endpoints" && parts[2] == "instances":
            let name = try endpointName(parts[1])
            return json(["Instances": .array(await instances(of: name))])
        case 3 where parts[0] == "endpoints" && parts[2] == "logs":
            let name = try endpointName(parts[1])
            return try log(of: name, query: Self.parameters(query))
        default:
            throw ServiceError(code: "UnknownOperationException", message: "No Strait API at GET \(path).", status: 404)
        }
    }

    private func endpoints() async throws(ServiceError) -> BufferedResponse {
        let records: [EndpointRecord]
        do { records = try store.endpoints() } catch { throw ServiceError.internalFailure(error.message) }
        var list: [JSONValue] = []
        for record in records.sorted(by: { $0.name < $1.name }) {
            let summaries = await reconciler.instanceSummaries(of: record.name)
            list.append(
                .object([
                    "EndpointName": .string(record.name),
                    "EndpointStatus": .string(record.status.rawValue),
                    "Instances": .number(Double(summaries.count)),
                    "InService": .number(Double(summaries.filter { $0.state == "InService" }.count)),
                ])
            )
        }
        return json(["Endpoints": .array(list)])
    }

    private func instances(of endpoint: String) async -> [JSONValue] {
        let now = Date()
        return await reconciler.instanceSummaries(of: endpoint).map { instance in
            .object([
                "InstanceId": .string(instance.id),
                "VariantName": .string(instance.variant),
                "Zone": .string(instance.zone),
                "Address": .string(instance.address),
                "Port": .number(Double(instance.port)),
                "State": .string(instance.state),
                "Pid": .number(Double(instance.pid)),
                "Restarts": .number(Double(instance.restarts)),
                "StartTime": .number(instance.startedAt.timeIntervalSince1970.rounded()),
                "UptimeSeconds": .number(now.timeIntervalSince(instance.startedAt).rounded()),
            ])
        }
    }

    private func log(of endpoint: String, query: [String: String]) throws(ServiceError) -> BufferedResponse {
        guard let instance = query["instance"], instance.hasPrefix("i-"),
            instance.dropFirst(2).allSatisfy({ $0.isHexDigit }), instance.count <= 20
        else {
            throw ServiceError.validation("The 'instance' parameter must name an instance, e.g. i-0123456789abcdef.")
        }
        let offsetText = query["offset"] ?? "0"
        guard let requested = UInt64(offsetText) else {
            throw ServiceError.validation("The 'offset' parameter must be a byte offset, not '\(offsetText)'.")
        }
        let path = "\(dataDirectory)/instances/\(endpoint)/\(instance).log"
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ServiceError(
                code: "ValidationException",
                message: "No log for instance \(instance) of endpoint \(endpoint).",
                status: 404
            )
        }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let offset = requested > size ? 0 : requested  // rotated since the last read
        try? handle.seek(toOffset: offset)
        let data = (try? handle.read(upToCount: Self.maximumLogChunk)) ?? Data()
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "x-strait-log-offset", value: String(offset + UInt64(data.count)))
        return BufferedResponse(status: .ok, headers: headers, body: Array(data))
    }

    private func endpointName(_ text: Substring) throws(ServiceError) -> String {
        let name = String(text).removingPercentEncoding ?? String(text)
        guard !name.isEmpty, name.count <= 63,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else {
            throw ServiceError.validation("'\(name)' is not an endpoint name.")
        }
        let record: EndpointRecord?
        do { record = try store.endpoint(named: name) } catch { throw ServiceError.internalFailure(error.message) }
        guard let record else {
            throw ServiceError(
                code: "ValidationException",
                message: "Could not find endpoint \"\(name)\".",
                status: 404
            )
        }
        return record.name
    }

    private func json(_ members: [String: JSONValue]) -> BufferedResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return BufferedResponse(status: .ok, headers: headers, body: Array(JSONValue.object(members).serialized().utf8))
    }

    static func parameters(_ query: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            result[key] = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
        }
        return result
    }
}

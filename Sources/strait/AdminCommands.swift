import ArgumentParser
import Foundation
import StraitAuth
import StraitCore
import StraitServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the running server is and how to sign for it: the data directory's `api-endpoint` and `credentials`.
struct ServerOptions: ParsableArguments {
    @Option(help: "The running server's data directory (default: $STRAIT_DATA_DIR, else ~/.strait).")
    var dataDir: String = ServerConfiguration.defaultDataDirectory()

    @Option(help: "The server's regional API URL (default: the one in the data directory).")
    var endpointUrl: String?

    @Option(help: "The region the server answers as.")
    var region: String = ServerConfiguration.defaultRegion

    func client() throws -> AdminClient {
        let directory = (dataDir as NSString).expandingTildeInPath
        let endpoint =
            endpointUrl
            ?? (try? String(contentsOfFile: directory + "/api-endpoint", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let endpoint, !endpoint.isEmpty else {
            throw ValidationError("No running strait serve found in \(directory): start one, or pass --endpoint-url.")
        }
        let credentials: Credentials
        do { credentials = try CredentialsFile.load(path: directory + "/credentials") } catch {
            throw ValidationError("Cannot read the credentials in \(directory): \(error)")
        }
        return AdminClient(
            endpoint: endpoint,
            signer: SigV4Signer(credentials: credentials, region: region, service: "sagemaker")
        )
    }
}

/// Signed `GET /strait/…` requests to a running server.
struct AdminClient {
    let endpoint: String
    let signer: SigV4Signer

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func get(_ path: String, query: String = "") async throws -> (Data, HTTPURLResponse) {
        guard let base = URL(string: endpoint), let host = base.host,
            let url = URL(string: endpoint + path + (query.isEmpty ? "" : "?" + query))
        else { throw Failure(description: "\(endpoint) is not a URL.") }
        let hostHeader = base.port.map { "\(host):\($0)" } ?? host
        var request = URLRequest(url: url)
        request.setValue(hostHeader, forHTTPHeaderField: "host")
        for (name, value) in signer.sign(
            method: "GET",
            path: path,
            query: query,
            headers: [("host", hostHeader)],
            body: []
        ) {
            request.setValue(value, forHTTPHeaderField: name)
        }
        let data: Data
        let response: URLResponse
        do { (data, response) = try await URLSession.shared.data(for: request) } catch {
            throw Failure(description: "Cannot reach strait serve at \(endpoint): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw Failure(description: "No HTTP answer from \(endpoint).")
        }
        guard http.statusCode == 200 else {
            let message = (try? JSONParser.parse(Array(data)))?["message"]?.stringValue
            throw Failure(description: message ?? "HTTP \(http.statusCode) from \(endpoint)\(path).")
        }
        return (data, http)
    }

    func json(_ path: String) async throws -> JSONValue {
        let (data, _) = try await get(path)
        return try JSONParser.parse(Array(data))
    }
}

/// Left-aligned columns, for tables on a terminal.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    return ([header] + rows).map { row in
        row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}

func number(_ value: JSONValue?) -> String {
    value?.intValue.map(String.init) ?? "-"
}

struct Endpoints: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the endpoints of a running strait serve, with their instances."
    )

    @OptionGroup var server: ServerOptions

    func run() async throws {
        let document = try await server.client().json("/strait/endpoints")
        let rows = (document["Endpoints"]?.arrayValue ?? []).map { endpoint in
            [
                endpoint["EndpointName"]?.stringValue ?? "-", endpoint["EndpointStatus"]?.stringValue ?? "-",
                number(endpoint["Instances"]), number(endpoint["InService"]),
            ]
        }
        print(table(["ENDPOINT", "STATUS", "INSTANCES", "IN SERVICE"], rows))
    }
}

struct Instances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the instances of an endpoint: zone, address, state, pid, restarts, uptime."
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The endpoint name.")
    var endpoint: String

    func run() async throws {
        let document = try await server.client().json("/strait/endpoints/\(endpoint)/instances")
        let rows = (document["Instances"]?.arrayValue ?? []).map { instance in
            [
                instance["InstanceId"]?.stringValue ?? "-", instance["VariantName"]?.stringValue ?? "-",
                instance["Zone"]?.stringValue ?? "-",
                "\(instance["Address"]?.stringValue ?? "-"):\(number(instance["Port"]))",
                instance["State"]?.stringValue ?? "-", number(instance["Pid"]), number(instance["Restarts"]),
                uptime(instance["UptimeSeconds"]?.intValue ?? 0),
            ]
        }
        print(table(["INSTANCE", "VARIANT", "ZONE", "ADDRESS", "STATE", "PID", "RESTARTS", "UPTIME"], rows))
    }

    private func uptime(_ seconds: Int) -> String {
        seconds >= 3600
            ? "\(seconds / 3600)h\(seconds % 3600 / 60)m"
            : seconds >= 60 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds)s"
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the logs of an endpoint's instances (stdout and stderr of each)."
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The endpoint name.")
    var endpoint: String

    @Option(help: "Only this instance (see `strait instances`).")
    var instance: String?

    @Flag(help: "Keep printing what the instances write, until interrupted.")
    var follow = false

    func run() async throws {
        let client = try server.client()
        var offsets: [String: UInt64] = [:]
        while true {
            let ids: [String]
            if let instance {
                ids = [instance]
            } else {
                let document = try await client.json("/strait/endpoints/\(endpoint)/instances")
                ids = (document["Instances"]?.arrayValue ?? []).compactMap { $0["InstanceId"]?.stringValue }
            }
            for id in ids {
                // Each read returns at most 1 MiB: read on until the offset stops moving.
                while true {
                    let start = offsets[id] ?? 0
                    let (data, response) = try await client.get(
                        "/strait/endpoints/\(endpoint)/logs",
                        query: "instance=\(id)&offset=\(start)"
                    )
                    let next = response.value(forHTTPHeaderField: "x-strait-log-offset").flatMap(UInt64.init) ?? start
                    offsets[id] = next
                    if !data.isEmpty {
                        let text = String(decoding: data, as: UTF8.self)
                        let prefix = ids.count > 1 || instance == nil ? "[\(id)] " : ""
                        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                        let body = lines.enumerated().map { index, line in
                            index == lines.count - 1 && line.isEmpty ? "" : prefix + line + "\n"
                        }.joined()
                        FileHandle.standardOutput.write(Data(body.utf8))
                    }
                    if data.count < 1 << 20 || next == start { break }
                }
            }
            guard follow else { return }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

import Foundation
public import StraitCore
import StraitSupervisor

/// The configuration file `strait serve --config PATH` reads: JSON, every member optional.
///
/// ```json
/// {
///   "zones": [
///     {"name": "us-east-1a", "id": "use1-az1", "subnets": [{"id": "subnet-0a", "cidr": "127.0.1.0/24"}]},
///     {"name": "us-east-1b", "id": "use1-az2", "subnets": [{"id": "subnet-0b", "cidr": "127.0.2.0/24"}]}
///   ]
/// }
/// ```
///
/// Each zone's runtime endpoint listens on the first host address of its first subnet, so that address must be one
/// this machine can bind (any 127.x.y.z on Linux).
public enum ConfigurationFile {
    /// The image table a configuration file defines (`images`), empty if none.
    public static func images(path: String) throws(ConfigurationError) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("Cannot read the configuration file \(path).")
        }
        guard let document = try? JSONParser.parse(Array(data)), let images = document["images"] else { return [:] }
        switch ImageTable.parse(images, source: path) {
        case .success(let table): return table
        case .failure(let failure): throw ConfigurationError(failure.message)
        }
    }

    /// The zones a configuration file defines, or nil if it defines none.
    /// - Throws: `ConfigurationError` saying what is wrong and where.
    public static func zones(path: String) throws(ConfigurationError) -> ZoneLayout? {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("Cannot read the configuration file \(path).")
        }
        let document: JSONValue
        do { document = try JSONParser.parse(Array(data)) } catch {
            throw ConfigurationError("\(path) is not valid JSON: \(error.message) at byte \(error.offset).")
        }
        return try zones(document, source: path)
    }

    static func zones(_ document: JSONValue, source: String) throws(ConfigurationError) -> ZoneLayout? {
        guard case .object(let members) = document else {
            throw ConfigurationError("\(source): the configuration must be a JSON object.")
        }
        let known: Set<String> = ["zones", "images"]
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError(
                "\(source): unknown setting '\(unknown)'. Known: \(known.sorted().joined(separator: ", "))."
            )
        }
        guard let zonesValue = members["zones"] else { return nil }
        guard let list = zonesValue.arrayValue, !list.isEmpty else {
            throw ConfigurationError("\(source): 'zones' must be a non-empty list.")
        }
        var zones: [Zone] = []
        var subnetIDs = Set<String>()
        var cidrs: [(String, IPv4CIDR)] = []
        for (index, entry) in list.enumerated() {
            let place = "\(source): zones[\(index)]"
            guard let name = entry["name"]?.stringValue, !name.isEmpty else {
                throw ConfigurationError("\(place) needs a 'name', for example \"us-east-1a\".")
            }
            guard !zones.contains(where: { $0.name == name }) else {
                throw ConfigurationError("\(place): the zone name '\(name)' is used twice.")
            }
            let id = entry["id"]?.stringValue ?? name
            guard let subnetList = entry["subnets"]?.arrayValue, !subnetList.isEmpty else {
                throw ConfigurationError("\(place) (\(name)) needs 'subnets': a list of {\"id\", \"cidr\"}.")
            }
            var subnets: [Subnet] = []
            for (subnetIndex, subnetEntry) in subnetList.enumerated() {
                let subnetPlace = "\(place).subnets[\(subnetIndex)]"
                guard let subnetID = subnetEntry["id"]?.stringValue, !subnetID.isEmpty,
                    subnetID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
                else {
                    throw ConfigurationError(
                        "\(subnetPlace) needs an 'id' of letters, digits and '-', like \"subnet-0a\"."
                    )
                }
                guard subnetIDs.insert(subnetID).inserted else {
                    throw ConfigurationError("\(subnetPlace): the subnet id '\(subnetID)' is used twice.")
                }
                guard let text = subnetEntry["cidr"]?.stringValue, let cidr = IPv4CIDR(text) else {
                    throw ConfigurationError(
                        "\(subnetPlace) needs a 'cidr' like \"127.0.1.0/24\" (the base address with no host bits set)."
                    )
                }
                guard cidr.size >= 4 else {
                    throw ConfigurationError("\(subnetPlace): \(cidr) is too small; use a /30 or larger block.")
                }
                if let (other, _) = cidrs.first(where: { $0.1.overlaps(cidr) }) {
                    throw ConfigurationError("\(subnetPlace): \(cidr) overlaps subnet '\(other)'.")
                }
                cidrs.append((subnetID, cidr))
                subnets.append(Subnet(id: subnetID, cidr: cidr))
            }
            zones.append(Zone(name: name, id: id, subnets: subnets))
        }
        return ZoneLayout(zones: zones)
    }
}

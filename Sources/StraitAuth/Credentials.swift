import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An access key pair.
public struct Credentials: Sendable, Equatable {
    public let accessKeyID: String
    public let secretAccessKey: String

    public init(accessKeyID: String, secretAccessKey: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
    }

    /// A new random key pair, shaped like AWS's: `AKIA` + 16 base-32 characters, and a 40-character secret.
    public static func generate() -> Credentials {
        var generator = SystemRandomNumberGenerator()
        let idAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let id =
            "AKIA" + String((0..<16).map { _ in idAlphabet[Int.random(in: 0..<idAlphabet.count, using: &generator)] })
        let secret = String(
            (0..<40).map { _ in secretAlphabet[Int.random(in: 0..<secretAlphabet.count, using: &generator)] }
        )
        return Credentials(accessKeyID: id, secretAccessKey: secret)
    }
}

/// The AWS shared-credentials file Strait keeps in its data directory.
public enum CredentialsFile {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Reads profile `default` from `path`, or on first start creates the file (mode 0600) with a new key pair.
    /// - Returns: the credentials and whether they were created now.
    public static func loadOrCreate(path: String) throws(Failure) -> (Credentials, created: Bool) {
        if FileManager.default.fileExists(atPath: path) {
            return (try load(path: path), false)
        }
        let credentials = Credentials.generate()
        let text = """
            [default]
            aws_access_key_id = \(credentials.accessKeyID)
            aws_secret_access_key = \(credentials.secretAccessKey)

            """
        let temporary = path + ".tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw Failure(description: "Cannot write \(temporary).") }
        guard rename(temporary, path) == 0 else {
            throw Failure(description: "Cannot write \(path): \(String(cString: strerror(errno))).")
        }
        return (credentials, true)
    }

    /// Reads the `default` profile of an AWS shared-credentials file.
    public static func load(path: String) throws(Failure) -> Credentials {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "Cannot read \(path).")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Failure(description: "\(path) is not UTF-8 text.")
        }
        var section = ""
        var values: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == "default", let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            values[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty, let secret = values["aws_secret_access_key"],
            !secret.isEmpty
        else {
            throw Failure(
                description:
                    "\(path) has no [default] profile with aws_access_key_id and aws_secret_access_key; fix or remove it to have Strait create a new one."
            )
        }
        return Credentials(accessKeyID: id, secretAccessKey: secret)
    }
}

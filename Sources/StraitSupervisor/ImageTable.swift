import Foundation
public import StraitCore

/// Image names for the process backend: `{"images": {"my-model:1": "/opt/models/my-model/serve", "xgb": "strait/xgboost"}}`,
/// from the configuration file (`images`) and from `<data-dir>/images.json`. A name without a tag matches every tag.
public enum ImageTable {
    public struct Failure: Error, Sendable, Equatable {
        public let message: String
    }

    public static func load(path: String) -> Result<[String: String], Failure> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(Failure(message: "Cannot read the image table \(path)."))
        }
        let document: JSONValue
        do { document = try JSONParser.parse(Array(data)) } catch {
            return .failure(Failure(message: "The image table \(path) is not valid JSON: \(error.message)."))
        }
        return parse(document["images"] ?? .null, source: path)
    }

    /// The `images` object: names to targets, both non-empty strings.
    public static func parse(_ value: JSONValue, source: String) -> Result<[String: String], Failure> {
        guard let members = value.objectValue else {
            return .failure(Failure(message: "\(source): 'images' must be an object of image names to executables."))
        }
        var table: [String: String] = [:]
        for (name, target) in members {
            guard !name.isEmpty, let path = target.stringValue, !path.isEmpty else {
                return .failure(
                    Failure(
                        message: "\(source): images.\(name) must be a path, a file:// URL or a built-in image name."
                    )
                )
            }
            table[name] = path
        }
        return .success(table)
    }
}

import Foundation

/// What an image name runs as on the process backend: an executable and the arguments before `serve`.
public struct ResolvedImage: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]
    /// The `ResolvedImage` DescribeEndpoint reports.
    public var description: String
    /// A container image for the Docker backend; nil for the process backend.
    public var containerImage: String? = nil
}

/// Turns a model's `Image` into something the process backend can run.
///
/// - `strait/echo[:tag]`, `strait/xgboost[:tag]` and SageMaker XGBoost image URIs: built-in runtimes, served by
///   `strait worker`.
/// - an absolute path or `file://` URL: an executable, or a directory holding an executable `serve`.
public struct ImageResolver: Sendable {
    /// The `strait` binary that serves built-in runtimes as `strait worker`.
    public let workerExecutable: String
    /// Image names mapped to what they run (a path, a `file://` URL or a built-in image): the configuration file's.
    public let table: [String: String]
    /// A JSON file of more names (`{"images": {NAME: TARGET}}`), read at every resolution so edits apply to the
    /// next deployment: `<data-dir>/images.json`.
    public let tableFile: String?

    /// The Docker engine's socket: images that are neither built in, local nor in the table run as containers.
    public let dockerSocket: String?

    public init(
        workerExecutable: String,
        table: [String: String] = [:],
        tableFile: String? = nil,
        dockerSocket: String? = nil
    ) {
        self.workerExecutable = workerExecutable
        self.table = table
        self.tableFile = tableFile
        self.dockerSocket = dockerSocket
    }

    public struct Failure: Error, Sendable, Equatable {
        public let reason: String
    }

    public func resolve(_ image: String) -> Result<ResolvedImage, Failure> {
        var table = self.table
        if let tableFile, FileManager.default.fileExists(atPath: tableFile) {
            switch ImageTable.load(path: tableFile) {
            case .success(let entries): table.merge(entries) { _, fromFile in fromFile }
            case .failure(let failure): return .failure(Failure(reason: failure.message))
            }
        }
        let (name, _) = Self.splitTag(image)
        if let target = table[image] ?? table[name] {
            // A table entry names a path, a file:// URL or a built-in image; it is not looked up again.
            return ImageResolver(workerExecutable: workerExecutable, dockerSocket: dockerSocket).resolve(target)
                .mapError { Failure(reason: "Image \(image) maps to \(target) in the image table: \($0.reason)") }
        }
        if let runtime = Self.builtInRuntime(name) {
            return .success(
                ResolvedImage(
                    executable: workerExecutable,
                    arguments: ["worker", "--runtime", runtime],
                    description: image
                )
            )
        }
        var path: String?
        if image.hasPrefix("file://") {
            path = URL(string: image)?.path
        } else if image.hasPrefix("/") {
            path = image
        }
        guard let path, !path.isEmpty else {
            if dockerSocket != nil, !image.isEmpty, !image.hasPrefix("file:") {
                return .success(
                    ResolvedImage(executable: "", arguments: [], description: image, containerImage: image)
                )
            }
            return .failure(
                Failure(
                    reason:
                        "Requested image \(image) not found. Without a Docker engine Strait runs the built-in images strait/echo and strait/xgboost, SageMaker XGBoost image URIs, and local executables given as an absolute path or file:// URL; to run container images, start dockerd (or podman system service) and pass strait serve --docker-host unix:///path/to/docker.sock (or set DOCKER_HOST)."
                )
            )
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .failure(Failure(reason: "Requested image \(image) not found: \(path) does not exist."))
        }
        let executable = isDirectory.boolValue ? (path as NSString).appendingPathComponent("serve") : path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            return .failure(
                Failure(reason: "Requested image \(image) cannot run: \(executable) is not an executable file.")
            )
        }
        return .success(ResolvedImage(executable: executable, arguments: [], description: "file://" + executable))
    }

    /// The built-in runtime an image name stands for: `strait/echo`, `strait/xgboost`, and any SageMaker XGBoost
    /// image (`<registry>/sagemaker-xgboost:<tag>`, e.g. `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1`).
    static func builtInRuntime(_ name: String) -> String? {
        switch name {
        case "strait/echo": return "echo"
        case "strait/xgboost": return "xgboost"
        default:
            let repository = name.split(separator: "/").last.map(String.init) ?? name
            return repository == "sagemaker-xgboost" || repository == "xgboost" && name.contains(".amazonaws.com/")
                ? "xgboost" : nil
        }
    }

    /// Splits `name:tag` (a colon after the last slash) into its parts.
    static func splitTag(_ image: String) -> (name: String, tag: String?) {
        guard let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") else { return (image, nil) }
        return (String(image[..<colon]), String(image[image.index(after: colon)...]))
    }
}

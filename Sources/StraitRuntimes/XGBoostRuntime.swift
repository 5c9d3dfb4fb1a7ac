import Foundation
public import NIOCore
public import StraitXGBoost

/// `strait/xgboost` and SageMaker XGBoost image URIs: the SageMaker XGBoost container's serving behaviour on an
/// XGBoost model from the model directory, predicted natively (see ``XGBoostInference``).
public struct XGBoostRuntime: ModelRuntime {
    public static let name = "xgboost"

    public let inference: XGBoostInference

    /// Loads the model from `modelDirectory`; the error says what is wrong with the directory or the file.
    public init(modelDirectory: String, environment: [String: String]) throws(XGBoostModel.LoadError) {
        // Script mode (a user's inference.py) needs the real container; saying so beats ignoring the script.
        if let program = environment["SAGEMAKER_PROGRAM"], !program.isEmpty {
            throw XGBoostModel.LoadError(
                "SAGEMAKER_PROGRAM=\(program) asks for XGBoost script mode, which the built-in runtime does not run: it serves the model file as the SageMaker XGBoost container does in algorithm mode. Remove SAGEMAKER_PROGRAM, or deploy the container image through a Docker engine."
            )
        }
        let file = try Self.modelFile(in: modelDirectory)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw XGBoostModel.LoadError("Cannot read the model file \(file).")
        }
        do {
            let model = try XGBoostModel(modelFile: [UInt8](data))
            self.inference = XGBoostInference(model: model, environment: environment)
        } catch {
            throw XGBoostModel.LoadError("Model \(file) cannot be loaded: \(error.message)")
        }
    }

    /// The model file: `xgboost-model` (the name SageMaker's XGBoost training writes), else the one regular file
    /// that is not hidden (typically `model.json` or `model.ubj`).
    static func modelFile(in directory: String) throws(XGBoostModel.LoadError) -> String {
        let manager = FileManager.default
        let preferred = (directory as NSString).appendingPathComponent("xgboost-model")
        if manager.fileExists(atPath: preferred) { return preferred }
        guard let names = try? manager.contentsOfDirectory(atPath: directory) else {
            throw XGBoostModel.LoadError("The model directory \(directory) cannot be read.")
        }
        let files = names.sorted().filter { name in
            var isDirectory: ObjCBool = false
            let path = (directory as NSString).appendingPathComponent(name)
            return !name.hasPrefix(".") && manager.fileExists(atPath: path, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
        guard let only = files.first else {
            throw XGBoostModel.LoadError(
                "The model directory \(directory) holds no model file: expected xgboost-model or one model.json / model.ubj."
            )
        }
        guard files.count == 1 else {
            throw XGBoostModel.LoadError(
                "The model directory \(directory) holds several files (\(files.joined(separator: ", "))) and no xgboost-model: keep one model file."
            )
        }
        return (directory as NSString).appendingPathComponent(only)
    }

    public var isReady: Bool { true }

    public func invoke(
        body: ByteBuffer,
        contentType: String?,
        accept: String?,
        customAttributes: String?,
        allocator: ByteBufferAllocator
    ) -> InvocationResult {
        let response = body.withUnsafeReadableBytes { bytes in
            inference.invoke(body: bytes, contentType: contentType, accept: accept)
        }
        var buffer = allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        return InvocationResult(status: response.status, contentType: response.contentType, body: buffer)
    }
}

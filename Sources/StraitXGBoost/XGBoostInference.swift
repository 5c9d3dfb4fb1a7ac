/// One answer of the XGBoost runtime: status, content type and body bytes.
public struct InferenceResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String?
    public var body: [UInt8]

    public init(status: Int, contentType: String?, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    static func error(_ status: Int, _ message: String) -> InferenceResponse {
        InferenceResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(message.utf8))
    }
}

/// The SageMaker XGBoost container's `POST /invocations`, over a loaded model: request content types, response
/// encodings by Accept, selectable inference outputs and the container's status codes. Pure: bytes in, bytes out.
///
/// Order of checks, as the container: an empty body is 204; an unsupported Content-Type 415; a payload that does
/// not parse or has the wrong number of features 400; an unsupported Accept 406.
public struct XGBoostInference: Sendable {
    public let model: XGBoostModel
    /// `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`: the encoding when the caller sends no Accept or `*/*`.
    public let defaultAccept: String
    /// `SAGEMAKER_INFERENCE_OUTPUT`, split: the selectable outputs, or nil for plain predictions.
    public let selectedOutputs: [String]?
    /// `SAGEMAKER_BATCH`: batch transform output (one prediction per line, always a trailing newline).
    public let isBatch: Bool

    public static let acceptedAccepts = ["application/json", "application/jsonlines", "text/csv"]

    public init(model: XGBoostModel, environment: [String: String]) {
        self.model = model
        let configuredAccept = environment["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] ?? ""
        self.defaultAccept = configuredAccept.isEmpty ? "text/csv" : configuredAccept
        self.selectedOutputs = environment["SAGEMAKER_INFERENCE_OUTPUT"].map { value in
            value.lowercased().filter { $0 != " " }.split(separator: ",", omittingEmptySubsequences: false).map(
                String.init
            )
        }
        self.isBatch = !(environment["SAGEMAKER_BATCH"] ?? "").isEmpty
    }

    enum RequestFormat { case csv, libsvm }

    public func invoke(body: UnsafeRawBufferPointer, contentType: String?, accept: String?) -> InferenceResponse {
        guard !body.isEmpty else { return InferenceResponse(status: 204, contentType: nil, body: []) }
        let format: RequestFormat
        switch Self.requestFormat(contentType) {
        case .success(let parsed): format = parsed
        case .failure(let error): return .error(415, error.message)
        }
        let matrix: FeatureMatrix
        do throws(PayloadError) {
            switch format {
            case .csv: matrix = try PayloadParser.csv(body, featureCount: model.featureCount)
            case .libsvm: matrix = try PayloadParser.libsvm(body, featureCount: model.featureCount)
            }
        } catch {
            return .error(400, "Unable to evaluate payload provided: \(error.message)")
        }
        guard matrix.rowCount > 0 else {
            return .error(400, "Unable to evaluate payload provided: the payload holds no rows.")
        }
        let encoding: String
        switch Self.responseEncoding(accept, default: defaultAccept) {
        case .success(let parsed): encoding = parsed
        case .failure(let error): return .error(406, error.message)
        }
        var predictions = [Float](repeating: 0, count: matrix.rowCount * model.groupCount)
        matrix.values.withUnsafeBufferPointer { rows in
            predictions.withUnsafeMutableBufferPointer { output in
                model.predict(rows: rows, rowCount: matrix.rowCount, into: output)
            }
        }
        let rows = PredictionRows(values: predictions, rowCount: matrix.rowCount, width: model.outputsPerRow)
        let contentType = encoding.hasPrefix("text/") ? encoding + "; charset=utf-8" : encoding
        if let selectedOutputs {
            switch SelectableOutput.encode(
                rows,
                model: model,
                keys: selectedOutputs,
                encoding: encoding,
                batch: isBatch
            ) {
            case .success(let body): return InferenceResponse(status: 200, contentType: contentType, body: body)
            case .failure(let error): return .error(500, error.message)
            }
        }
        return InferenceResponse(status: 200, contentType: contentType, body: encodePlain(rows, encoding: encoding))
    }

    /// Plain predictions: CSV one row per line, JSON `{"predictions": [{"score": …}]}`, JSON lines `{"score": …}`.
    func encodePlain(_ rows: PredictionRows, encoding: String) -> [UInt8] {
        var out = NumberWriter(json: !isBatch && encoding != "text/csv")
        if isBatch {
            for row in 0..<rows.rowCount {
                rows.writeScore(row, to: &out, asList: true)
                out.append("\n")
            }
            return out.bytes
        }
        switch encoding {
        case "application/json":
            out.append("{\"predictions\": [")
            for row in 0..<rows.rowCount {
                if row > 0 { out.append(", ") }
                out.append("{\"score\": ")
                rows.writeScore(row, to: &out, asList: true)
                out.append("}")
            }
            out.append("]}")
        case "application/jsonlines":
            for row in 0..<rows.rowCount {
                out.append("{\"score\": ")
                rows.writeScore(row, to: &out, asList: true)
                out.append("}\n")
            }
        default:
            for row in 0..<rows.rowCount {
                rows.writeScore(row, to: &out, asList: false)
                out.append("\n")
            }
        }
        return out.bytes
    }

    // MARK: Content negotiation

    struct NegotiationError: Error { let message: String }

    static func requestFormat(_ header: String?) -> Result<RequestFormat, NegotiationError> {
        guard let header else { return .success(.libsvm) }  // the container's default
        let lowered = header.lowercased()
        // libsvm types match exactly, parameters and all, as in the container; text/csv may carry parameters.
        if ["libsvm", "text/libsvm", "text/x-libsvm"].contains(lowered) { return .success(.libsvm) }
        let mediaType = lowered.split(separator: ";", maxSplits: 1).first.map { String($0).trimmed } ?? ""
        switch mediaType {
        case "csv", "text/csv":
            for parameter in lowered.split(separator: ";").dropFirst() {
                let parts = parameter.split(separator: "=", maxSplits: 1).map { String($0).trimmed }
                if parts.first == "label_size", parts.count == 2, parts[1] != "1" {
                    return .failure(
                        NegotiationError(
                            message:
                                "\(lowered) is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
                        )
                    )
                }
            }
            return .success(.csv)
        case "parquet", "application/x-parquet", "recordio-protobuf", "application/x-recordio-protobuf":
            return .failure(NegotiationError(message: "Content-type \(header) is not supported."))
        default:
            return .failure(
                NegotiationError(
                    message:
                        "\(header) is not an accepted ContentType: csv, libsvm, text/csv, text/libsvm, text/x-libsvm."
                )
            )
        }
    }

    static func responseEncoding(_ header: String?, default fallback: String) -> Result<String, NegotiationError> {
        let mediaType = header?.split(separator: ";", maxSplits: 1).first.map { String($0).trimmed.lowercased() } ?? ""
        let chosen = mediaType.isEmpty || mediaType == "*/*" ? fallback.lowercased() : mediaType
        guard acceptedAccepts.contains(chosen) else {
            let list = acceptedAccepts.map { "'\($0)'" }.joined(separator: ", ")
            return .failure(
                NegotiationError(
                    message:
                        "Accept type \(header ?? fallback) is not supported. Please use supported accept types: [\(list)]."
                )
            )
        }
        return .success(chosen)
    }
}

/// Predictions of a request: `rowCount` rows of `width` values.
struct PredictionRows {
    let values: [Float]
    let rowCount: Int
    let width: Int

    subscript(row: Int) -> ArraySlice<Float> { values[row * width..<(row + 1) * width] }

    /// One row's score: a number, or for several outputs a list (`[a, b]`) or CSV fields (`a,b`).
    func writeScore(_ row: Int, to out: inout NumberWriter, asList: Bool) {
        if width == 1 {
            out.append(Double(values[row]))
            return
        }
        if asList { out.append("[") }
        for (offset, value) in self[row].enumerated() {
            if offset > 0 { out.append(asList ? ", " : ",") }
            out.append(Double(value))
        }
        if asList { out.append("]") }
    }
}

/// Writes text and numbers as Python's `str` would print them (shortest round-trip digits).
struct NumberWriter {
    var bytes: [UInt8] = []
    /// JSON writes NaN as the bare `NaN` (as Python's json module does); CSV as `nan`.
    var json: Bool

    init(json: Bool) { self.json = json }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func append(_ value: Double) {
        if value.isNaN {
            append(json ? "NaN" : "nan")
        } else if value.isInfinite {
            append(json ? (value < 0 ? "-Infinity" : "Infinity") : (value < 0 ? "-inf" : "inf"))
        } else {
            append(value.description)
        }
    }

    mutating func append(_ value: Int) { append(String(value)) }
}

extension String {
    var trimmed: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}

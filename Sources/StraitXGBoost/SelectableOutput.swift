import StraitCore

/// `SAGEMAKER_INFERENCE_OUTPUT`: the SageMaker XGBoost container's selectable inference outputs — predicted_label,
/// labels, probability, probabilities, raw_score, raw_scores, predicted_score — per objective.
///
/// As the container: a key the objective does not offer (or an unknown key) is answered with NaN; an objective with
/// no selectable outputs is an error (500). CSV has one line per row in the order of the keys, lists quoted;
/// JSON and JSON lines hold one object per row with the keys in a fixed order.
enum SelectableOutput {
    static let keyOrder = [
        "predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores", "predicted_score",
    ]

    enum Value {
        case integer(Int)
        case number(Double)
        case integers([Int])
        case numbers([Double])

        func write(to out: inout NumberWriter) {
            switch self {
            case .integer(let value): out.append(value)
            case .number(let value): out.append(value)
            case .integers(let values): Self.writeList(values, to: &out) { $0.append($1) }
            case .numbers(let values): Self.writeList(values, to: &out) { $0.append($1) }
            }
        }

        /// A list as Python prints one: `[a, b]`.
        private static func writeList<Element>(
            _ values: [Element],
            to out: inout NumberWriter,
            _ write: (inout NumberWriter, Element) -> Void
        ) {
            out.append("[")
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(", ") }
                write(&out, value)
            }
            out.append("]")
        }

        var isList: Bool {
            switch self {
            case .integers, .numbers: true
            case .integer, .number: false
            }
        }
    }

    struct Failure: Error { let message: String }

    static func offeredKeys(for objective: String) -> Set<String>? {
        switch objective {
        case "reg:squarederror", "reg:logistic", "reg:gamma", "reg:tweedie", "reg:absoluteerror":
            return ["predicted_score"]
        case "binary:logistic", "multi:softprob":
            return ["predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores"]
        case "binary:logitraw", "binary:hinge", "multi:softmax":
            return ["predicted_label", "labels", "raw_score", "raw_scores"]
        default: return nil
        }
    }

    /// The value of `key` for one row of predictions.
    static func value(_ key: String, row: ArraySlice<Float>, model: XGBoostModel) -> Value {
        let objective = model.objective
        let first = Double(row.first ?? .nan)
        if objective == "multi:softprob" {
            let probabilities = row.map(Double.init)
            var best = 0
            for index in probabilities.indices where probabilities[index] > probabilities[best] { best = index }
            switch key {
            case "predicted_label": return .integer(best)
            case "labels": return .integers(Array(0..<model.classCount))
            case "probability", "raw_score": return .number(probabilities.max() ?? .nan)
            default: return .numbers(probabilities)  // probabilities, raw_scores
            }
        }
        switch key {
        case "predicted_label":
            switch objective {
            case "binary:logistic": return .integer(first > 0.5 ? 1 : 0)
            case "binary:logitraw": return .integer(first > 0 ? 1 : 0)
            default: return .number(first)  // hinge, softmax: the prediction itself
            }
        case "labels":
            return .integers(objective.hasPrefix("multi:") ? Array(0..<model.classCount) : [0, 1])
        case "probabilities", "raw_scores": return .numbers([1.0 - first, first])
        default: return .number(first)  // probability, raw_score, predicted_score
        }
    }

    static func encode(
        _ rows: PredictionRows,
        model: XGBoostModel,
        keys: [String],
        encoding: String,
        batch: Bool
    ) -> Result<[UInt8], Failure> {
        guard let offered = offeredKeys(for: model.objective) else {
            return .failure(
                Failure(message: "Objective `\(model.objective)` unsupported for selectable inference predictions.")
            )
        }
        func rowValue(_ key: String, _ row: Int) -> Value {
            offered.contains(key) ? value(key, row: rows[row], model: model) : .number(.nan)
        }
        var out = NumberWriter(json: encoding != "text/csv")
        if encoding == "text/csv" {
            for row in 0..<rows.rowCount {
                if row > 0 { out.append("\n") }
                for (index, key) in keys.enumerated() {
                    if index > 0 { out.append(",") }
                    let value = rowValue(key, row)
                    if value.isList { out.append("\"") }
                    value.write(to: &out)
                    if value.isList { out.append("\"") }
                }
            }
            if batch { out.append("\n") }
            return .success(out.bytes)
        }
        // JSON objects: the known keys in the container's order, then unknown ones in the order given.
        var objectKeys = keyOrder.filter { keys.contains($0) }
        for key in keys where !keyOrder.contains(key) && !objectKeys.contains(key) { objectKeys.append(key) }
        let lines = encoding == "application/jsonlines"
        if !lines { out.append("{\"predictions\": [") }
        for row in 0..<rows.rowCount {
            if row > 0, !lines { out.append(", ") }
            out.append("{")
            for (index, key) in objectKeys.enumerated() {
                if index > 0 { out.append(", ") }
                out.append(JSONValue.string(key).serialized())
                out.append(": ")
                rowValue(key, row).write(to: &out)
            }
            out.append(lines ? "}\n" : "}")
        }
        if !lines { out.append("]}") }
        return .success(out.bytes)
    }
}

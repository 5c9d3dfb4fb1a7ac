import Foundation
import StraitCore
import Testing

@testable import StraitXGBoost

private func csv(_ text: String, features: Int) throws -> FeatureMatrix {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { try PayloadParser.csv($0, featureCount: features) }
}

private func libsvm(_ text: String, features: Int) throws -> FeatureMatrix {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { try PayloadParser.libsvm($0, featureCount: features) }
}

private func same(_ lhs: [Float], _ rhs: [Float]) -> Bool {
    lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}

@Suite struct DecimalParserTests {
    @Test(arguments: [
        "0", "-0", "1", "+1", "0.1", "1e3", "1E-3", ".5", "5.", "3.4028234e38", "1e-45", "123456789012345678901234",
        "0.1234567890123456789", "-7.006492321624085e-46", "2.5", "1.00000017881393432617187499",
    ])
    func matchesStrtodThenFloat(_ text: String) {
        let bytes = Array(text.utf8)
        let parsed = bytes.withUnsafeBytes { DecimalParser.parse($0, 0, bytes.count) }
        #expect(parsed?.bitPattern == Float(Double(text)!).bitPattern)
    }

    @Test(arguments: ["", "-", ".", "e5", "1e", "1e+", "0x10", "1,5", "nan", "inf", "1e39", "--1", "1.2.3", "١"])
    func rejectsNonNumbers(_ text: String) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBytes { DecimalParser.parse($0, 0, bytes.count) } == nil)
    }

    @Test func randomValuesRoundTrip() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let value =
                Double(Float.random(in: -1e6...1e6, using: &generator)) * pow(10, Double(Int.random(in: -20...20)))
            for text in [value.description, String(format: "%.18e", value)] {
                let bytes = Array(text.utf8)
                let parsed = bytes.withUnsafeBytes { DecimalParser.parse($0, 0, bytes.count) }
                #expect(parsed?.bitPattern == Float(Double(text)!).bitPattern, "\(text)")
            }
        }
    }
}

@Suite struct PayloadParserTests {
    @Test func csvRowsMissingValuesAndLineEndings() throws {
        let matrix = try csv("1,2,3\r\n,nan, 4 \n\n5,6,7\n", features: 3)
        #expect(matrix.rowCount == 3)
        #expect(same(matrix.values, [1, 2, 3, .nan, .nan, 4, 5, 6, 7]))
    }

    @Test func csvDelimiterFromTheFirstLine() throws {
        #expect(same(try csv("1\t2\n3\t4", features: 2).values, [1, 2, 3, 4]))
        #expect(same(try csv("1;2", features: 2).values, [1, 2]))
        #expect(same(try csv("7", features: 1).values, [7]))
    }

    @Test(arguments: [
        ("1,2", "(2 on line 1)"), ("1,2,3\n1,2,3,4", "(4 on line 2)"), ("1,x,3", "column 2 ('x')"),
        ("1,inf,3", "contains `inf`"), ("1,-Infinity,3", "contains `inf`"), ("1,1e300,3", "contains `inf`"),
        ("1,\"2\",3", "column 2"), ("1, ,3", "column 2"),
    ])
    func csvErrors(_ text: String, _ message: String) {
        #expect {
            try csv(text, features: 3)
        } throws: { error in
            (error as? PayloadError)?.message.contains(message) == true
        }
    }

    @Test func libsvmIndicesLabelsAndDuplicates() throws {
        // 0-based (index 0 present): label ignored, absent features missing, a repeated index adds up.
        let zeroBased = try libsvm("1 0:1 2:3\n0 1:2 1:2\n", features: 3)
        #expect(same(zeroBased.values, [1, .nan, 3, .nan, 4, .nan]))
        // No index 0 anywhere: 1-based, as the container takes it; trailing empty lines dropped, inner kept.
        let oneBased = try libsvm("3:1\n\n1:2\n\n\n", features: 3)
        #expect(oneBased.rowCount == 3)
        #expect(same(oneBased.values, [.nan, .nan, 1, .nan, .nan, .nan, 2, .nan, .nan]))
    }

    @Test func libsvmBoundsBeforeStoring() throws {
        // An index past Int32 (found by review: it trapped) and a body of blank lines that would expand to 10^8 values.
        #expect(throws: PayloadError.self) { try libsvm("1 3000000000:1", features: 3) }
        let blankLines = String(repeating: "\n", count: 100_000) + "0:1"
        #expect {
            try libsvm(blankLines, features: 1000)
        } throws: { error in
            (error as? PayloadError)?.message.contains("send fewer rows per request") == true
        }
    }

    @Test(arguments: [("0:1 5:1", "larger than feature size"), ("1:x", "not index:value"), ("a:1", "not index:value")])
    func libsvmErrors(_ text: String, _ message: String) {
        #expect {
            try libsvm(text, features: 3)
        } throws: { error in
            (error as? PayloadError)?.message.contains(message) == true
        }
    }
}

@Suite struct UBJSONParserTests {
    @Test func optimizedContainersAndScalars() throws {
        // {"a": [$d#i2 1.5 -2.0], "b": [i 7, U 200, S "x", T, Z]} with keys length-prefixed by i.
        var bytes: [UInt8] = [UInt8(ascii: "{"), UInt8(ascii: "i"), 1, UInt8(ascii: "a")]
        bytes += [UInt8(ascii: "["), UInt8(ascii: "$"), UInt8(ascii: "d"), UInt8(ascii: "#"), UInt8(ascii: "i"), 2]
        bytes += [0x3F, 0xC0, 0, 0, 0xC0, 0, 0, 0]
        bytes += [UInt8(ascii: "i"), 1, UInt8(ascii: "b"), UInt8(ascii: "[")]
        bytes += [
            UInt8(ascii: "i"), 7, UInt8(ascii: "U"), 200, UInt8(ascii: "S"), UInt8(ascii: "i"), 1, UInt8(ascii: "x"),
        ]
        bytes += [UInt8(ascii: "T"), UInt8(ascii: "Z"), UInt8(ascii: "]"), UInt8(ascii: "}")]
        let value = try UBJSONParser.parse(bytes)
        #expect(value["a"] == .array([.number(1.5), .number(-2)]))
        #expect(value["b"] == .array([.number(7), .number(200), .string("x"), .bool(true), .null]))
    }

    @Test(arguments: [
        [UInt8](),
        [UInt8(ascii: "{")],
        [
            UInt8(ascii: "["), UInt8(ascii: "$"), UInt8(ascii: "d"), UInt8(ascii: "#"), UInt8(ascii: "L"), 0x7F, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ],
        [
            UInt8(ascii: "["), UInt8(ascii: "$"), UInt8(ascii: "Z"), UInt8(ascii: "#"), UInt8(ascii: "l"), 0x7F, 0xFF,
            0xFF, 0xFF,
        ],
        [UInt8(ascii: "S"), UInt8(ascii: "i"), 0xFF],
        [UInt8(ascii: "S"), UInt8(ascii: "i"), 2, 0xC3, 0x28],
        [UInt8(ascii: "Q")],
        [UInt8(ascii: "i"), 1, 2],
        [UInt8](repeating: UInt8(ascii: "["), count: 100),
        [UInt8(ascii: "["), UInt8(ascii: "$"), UInt8(ascii: "d"), UInt8(ascii: "i")],
    ])
    func badBytesAreErrors(_ bytes: [UInt8]) {
        #expect(throws: UBJSONParser.Failure.self) { try UBJSONParser.parse(bytes) }
    }
}

@Suite struct XGBoostInferenceTests {
    static let model: XGBoostModel = {
        let json = """
            {"learner": {"learner_model_param": {"base_score": "5E-1", "num_class": "0", "num_feature": "2"},
              "objective": {"name": "binary:logistic"},
              "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0], "trees": [
                {"tree_param": {"num_nodes": "3"}, "left_children": [1, -1, -1], "right_children": [2, -1, -1],
                 "split_indices": [0, 0, 0], "split_conditions": [0.5, -1.0, 1.0], "default_left": [1, 0, 0]}]}}}}
            """
        return try! XGBoostModel(modelFile: Array(json.utf8))
    }()

    private func invoke(
        _ body: String,
        contentType: String? = "text/csv",
        accept: String? = nil,
        environment: [String: String] = [:]
    ) -> (Int, String?, String) {
        let inference = XGBoostInference(model: Self.model, environment: environment)
        let bytes = Array(body.utf8)
        let response = bytes.withUnsafeBytes { inference.invoke(body: $0, contentType: contentType, accept: accept) }
        return (response.status, response.contentType, String(decoding: response.body, as: UTF8.self))
    }

    @Test func statusCodesInTheContainersOrder() {
        #expect(invoke("").0 == 204)
        #expect(invoke("1,2", contentType: "application/json").0 == 415)
        #expect(invoke("1,2", contentType: "text/libsvm; charset=utf-8").0 == 415)
        #expect(invoke("1,2,3", accept: "text/html").0 == 400)  // the payload is read before Accept
        #expect(invoke("1,2", accept: "text/html").0 == 406)
        #expect(invoke("1,2", accept: "text/csv, application/json").0 == 406)
        #expect(invoke("1,2", contentType: "TEXT/CSV; charset=utf-8", accept: "application/json; verbose=1").0 == 200)
    }

    @Test func encodingsAndPythonNumberFormatting() {
        let sigmoidOfOne = Double(XGBoostModel.sigmoid(1))
        let sigmoidOfMinusOne = Double(XGBoostModel.sigmoid(-1))
        #expect(invoke("1,0\n0,0").2 == "\(sigmoidOfOne)\n\(sigmoidOfMinusOne)\n")
        #expect(invoke("1,0", accept: "application/json").2 == "{\"predictions\": [{\"score\": \(sigmoidOfOne)}]}")
        #expect(invoke("1,0", accept: "application/jsonlines").2 == "{\"score\": \(sigmoidOfOne)}\n")
        let fallback = invoke("1,0", environment: ["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"])
        #expect(fallback.1 == "application/json")
        var writer = NumberWriter(json: false)
        for value in [1e-7, 1e16, 2.0, 0.1, 123456.5, Double(Float(0.1))] {
            writer.append(value)
            writer.append(" ")
        }
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "1e-07 1e+16 2.0 0.1 123456.5 0.10000000149011612 ")
    }

    @Test func selectableOutputs() {
        let environment = ["SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilities, RAW_SCORE,bogus"]
        let p = Double(XGBoostModel.sigmoid(1))
        let (status, _, body) = invoke("1,0", environment: environment)
        #expect(status == 200)
        #expect(body == "1,\"[\(1 - p), \(p)]\",\(p),nan")
        let json = invoke("1,0", accept: "application/json", environment: environment).2
        #expect(
            json
                == "{\"predictions\": [{\"predicted_label\": 1, \"probabilities\": [\(1 - p), \(p)], \"raw_score\": \(p), \"bogus\": NaN}]}"
        )
        let batch = invoke("1,0\n0,0", environment: ["SAGEMAKER_BATCH": "true"]).2
        #expect(batch.hasSuffix("\n") && batch.split(separator: "\n").count == 2)
    }
}

#if canImport(Glibc)
import Glibc
#endif

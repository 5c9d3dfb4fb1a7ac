import StraitCore
import Testing

@testable import StraitXGBoost

/// A hand-written model: tree 0 splits feature 0 at 0.5 (missing goes right), tree 1 splits feature 1 on the
/// categories {1, 3} (they go right), on a squared-error objective with base_score 0.5.
private func twoTreeModel(objective: String = "reg:squarederror", booster: String = "gbtree") -> String {
    let trees = """
        "gbtree_model_param": {"num_trees": "2", "num_parallel_tree": "1"},
        "tree_info": [0, 0],
        "trees": [
          {"tree_param": {"num_nodes": "3", "num_feature": "2", "size_leaf_vector": "1"},
           "left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [0, 0, 0],
           "split_conditions": [0.5, -1.0, 2.0], "default_left": [0, 0, 0], "split_type": [0, 0, 0],
           "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": []},
          {"tree_param": {"num_nodes": "3", "num_feature": "2", "size_leaf_vector": "1"},
           "left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [1, 0, 0],
           "split_conditions": [0, 10.0, 20.0], "default_left": [1, 0, 0], "split_type": [1, 0, 0],
           "categories": [1, 3], "categories_nodes": [0], "categories_segments": [0], "categories_sizes": [2]}
        ]
        """
    let gradientBooster =
        booster == "dart"
        ? #"{"name": "dart", "weight_drop": [0.5, 2.0], "gbtree": {"name": "gbtree", "model": {\#(trees)}}}"#
        : #"{"name": "gbtree", "model": {\#(trees)}}"#
    return """
        {"learner": {"learner_model_param": {"base_score": "5E-1", "num_class": "0", "num_feature": "2"},
          "objective": {"name": "\(objective)"}, "gradient_booster": \(gradientBooster)},
         "version": [2, 1, 0]}
        """
}

private func load(_ json: String) throws -> XGBoostModel {
    try XGBoostModel(modelFile: Array(json.utf8))
}

private func predict(_ model: XGBoostModel, _ rows: [[Float]]) -> [Float] {
    let flat = rows.flatMap { $0 }
    var output = [Float](repeating: 0, count: rows.count * model.groupCount)
    flat.withUnsafeBufferPointer { input in
        output.withUnsafeMutableBufferPointer { model.predict(rows: input, rowCount: rows.count, into: $0) }
    }
    return Array(output.prefix(rows.count * model.outputsPerRow))
}

@Suite struct XGBoostModelTests {
    @Test func numericCategoricalAndMissingSplits() throws {
        let model = try load(twoTreeModel())
        #expect(model.featureCount == 2 && model.groupCount == 1)
        let nan = Float.nan
        // base 0.5 + tree 0 (x0 < 0.5 → -1 else 2; missing → right) + tree 1 (category 1 or 3 → 20, else 10;
        // missing → left; negative, too large or unseen categories → left; 3.7 truncates to 3).
        let rows: [[Float]] = [[0, 1], [0.5, 2], [nan, 3], [1, nan], [0, -1], [0, 1e9], [0, 3.7], [0, 64]]
        #expect(predict(model, rows) == [19.5, 12.5, 22.5, 12.5, 9.5, 9.5, 19.5, 9.5])
    }

    @Test func dartWeightsAndTransforms() throws {
        let dart = try load(twoTreeModel(booster: "dart"))
        // 0.5 + 0.5 * -1 + 2.0 * 20
        #expect(predict(dart, [[0, 1]]) == [40])
        let logistic = try load(twoTreeModel(objective: "binary:logistic"))
        let margin: Float = 0 + -1 + 20  // logit(0.5) = 0
        #expect(predict(logistic, [[0, 1]]) == [1 / (expf(-margin) + 1 + 1e-16)])
        let hinge = try load(twoTreeModel(objective: "binary:hinge"))
        #expect(predict(hinge, [[0, 1]]) == [1])
        let poisson = try load(twoTreeModel(objective: "count:poisson"))
        #expect(predict(poisson, [[0, 1]]) == [expf(logf(0.5) + 19)])
    }

    @Test func batchPathMatchesRowByRow() throws {
        let model = try load(twoTreeModel())
        let rows = (0..<300).map { index in [Float(index % 7) / 7, Float(index % 5)] }
        let batch = predict(model, rows)
        #expect(batch == rows.flatMap { predict(model, [$0]) })
    }

    /// Nineteen lopsided trees (a chain down the left, leaves at every depth, nodes listed out of breadth-first
    /// order): the lockstep walks of eight trees and of eight rows must equal a plain walk of each tree.
    @Test func lockstepWalksEqualPlainWalks() throws {
        // Tree t: node 0 splits x0 < 0, node 2 (its left) splits x1 < t, node 1 (right of 2) splits x0 < 5 …
        func tree(_ t: Int) -> String {
            """
            {"tree_param": {"num_nodes": "7"}, "left_children": [2, -1, 4, -1, -1, -1, 1],
             "right_children": [3, -1, 6, -1, -1, -1, 5], "split_indices": [0, 0, 1, 0, 0, 0, 0],
             "split_conditions": [0, \(t).5, \(t), -1, \(t + 100), \(t + 200), 5],
             "default_left": [0, 0, 1, 0, 0, 0, 1]}
            """
        }
        let json = """
            {"learner": {"learner_model_param": {"base_score": "0E0", "num_class": "0", "num_feature": "2"},
              "objective": {"name": "reg:squarederror"},
              "gradient_booster": {"name": "gbtree", "model": {"tree_info": [\((0..<19).map { _ in "0" }.joined(separator: ","))],
                "trees": [\((0..<19).map(tree).joined(separator: ","))]}}}}
            """
        let model = try load(json)
        func plain(_ row: [Float]) -> Float {
            (0..<19).reduce(Float(0)) { sum, t in
                let t = Float(t)
                guard !(row[0] < 0) || row[0].isNaN else {  // node 0 → left (node 2)
                    if row[1].isNaN || row[1] < t {  // node 2 → left (node 4)
                        return sum + t + 100
                    }
                    // node 6: x0 < 5 (missing left) → node 1 else node 5
                    return sum + (row[0] < 5 ? t + 0.5 : t + 200)
                }
                return sum - 1  // node 3
            }
        }
        let values: [Float] = [-3, -0.5, 0, 2, 4.5, 7, 30, .nan]
        let rows = values.flatMap { a in values.map { b in [a, b] } }
        #expect(predict(model, rows) == rows.map(plain))
        #expect(rows.prefix(9).allSatisfy { predict(model, [$0]) == [plain($0)] })
    }

    @Test func linearModelUsesBiasAndSkipsMissing() throws {
        let json = """
            {"learner": {"learner_model_param": {"base_score": "[1E0]", "num_class": "0", "num_feature": "2"},
              "objective": {"name": "reg:squarederror"},
              "gradient_booster": {"name": "gblinear", "model": {"weights": [2.0, 3.0, 0.25]}}}}
            """
        let model = try load(json)
        #expect(predict(model, [[1, 1], [Float.nan, 2]]) == [6.25, 7.25])
    }

    @Test func multiClassSoftmaxAndSoftprob() throws {
        func model(_ objective: String) -> String {
            """
            {"learner": {"learner_model_param": {"base_score": "[0E0,0E0,1E0]", "num_class": "3", "num_feature": "1"},
              "objective": {"name": "\(objective)"},
              "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0, 1], "trees": [
                {"tree_param": {"num_nodes": "1"}, "left_children": [-1], "right_children": [-1],
                 "split_indices": [0], "split_conditions": [3.0], "default_left": [0]},
                {"tree_param": {"num_nodes": "1"}, "left_children": [-1], "right_children": [-1],
                 "split_indices": [0], "split_conditions": [0.5], "default_left": [0]}]}}}}
            """
        }
        #expect(predict(try load(model("multi:softmax")), [[0]]) == [0])
        let probabilities = predict(try load(model("multi:softprob")), [[0]])
        #expect(probabilities.count == 3)
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-6)
        #expect(probabilities[0] > probabilities[2] && probabilities[2] > probabilities[1])
    }

    @Test(arguments: [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("{}", "no 'learner'"),
        (#"{"learner": {}}"#, "learner_model_param"),
        ("\u{80}\u{04}pickle", "pickle"),
        ("binf\u{0}\u{0}", "legacy binary"),
    ])
    func brokenFilesAreRefused(_ text: String, _ message: String) {
        #expect {
            try XGBoostModel(modelFile: text == "\u{80}\u{04}pickle" ? [0x80, 0x04, 0x95] : Array(text.utf8))
        } throws: { error in
            (error as? XGBoostModel.LoadError)?.message.contains(message) == true
        }
    }

    @Test(arguments: [
        (#""right_children": [2, -1, -1]"#, #""right_children": [2, 2, -1]"#, "right child but no left"),
        (#""left_children": [1, -1, -1]"#, #""left_children": [5, -1, -1]"#, "outside the tree"),
        (#""right_children": [2, -1, -1]"#, #""right_children": [1, -1, -1]"#, "reached twice"),
        (#""split_indices": [0, 0, 0]"#, #""split_indices": [9, 0, 0]"#, "splits on feature 9"),
        (#""num_nodes": "3""#, #""num_nodes": "4""#, "the tree has 4 nodes"),
        (#""categories_sizes": [2]"#, #""categories_sizes": [9]"#, "outside the tree or its categories"),
        (#""categories": [1, 3]"#, #""categories": [1, 99999999]"#, "category outside"),
        (
            #""categories_nodes": [0], "categories_segments": [0], "categories_sizes": [2]"#,
            #""categories_nodes": [0, 0], "categories_segments": [0, 0], "categories_sizes": [2, 2]"#, "listed twice"
        ),
        (#""tree_info": [0, 0]"#, #""tree_info": [0, 3]"#, "belongs to output 3"),
        (#""name": "reg:squarederror""#, #""name": "reg:fancy""#, "Unsupported objective"),
        (#""base_score": "5E-1""#, #""base_score": "[x]""#, "base_score"),
        (#""num_feature": "2"}"#, #""num_feature": "-2"}"#, "num_feature"),
    ])
    func hostileModelsAreRefused(_ original: String, _ replacement: String, _ message: String) {
        let model = twoTreeModel()
        let first = model.range(of: original)!
        let broken = model.replacingCharacters(in: first, with: replacement)
        #expect {
            try load(broken)
        } throws: { error in
            (error as? XGBoostModel.LoadError)?.message.contains(message) == true
        }
    }
}

extension String {
    fileprivate func range(of needle: String) -> Range<String.Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }

    fileprivate func replacingCharacters(in range: Range<String.Index>, with text: String) -> String {
        String(self[..<range.lowerBound]) + text + String(self[range.upperBound...])
    }
}

#if canImport(Glibc)
import Glibc
#endif

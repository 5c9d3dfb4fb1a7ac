public import StraitCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An XGBoost model ready to predict: trees flattened into one node array (or a linear model's weight matrix), the
/// objective's output transform and the base margin, loaded from XGBoost's JSON or UBJSON model format.
///
/// Prediction follows XGBoost's CPU predictor step for step in `Float`: the output starts at the base margin and
/// every tree's leaf is added in tree order, so results equal XGBoost's own, not just approximately.
public struct XGBoostModel: Sendable {
    /// The objective's name as the model records it, e.g. `binary:logistic`.
    public let objective: String
    /// The number of features a row must have.
    public let featureCount: Int
    /// Output groups: the number of classes for multi-class models, else the number of targets (1).
    public let groupCount: Int
    /// `num_class` (0 for everything but multi-class objectives).
    public let classCount: Int
    let baseMargin: [Float]
    let transform: Transform
    let booster: Booster

    /// How margins become predictions.
    enum Transform: Sendable, Equatable {
        case identity, sigmoid, hinge, exponential, softmaxClass, softmaxProbabilities
    }

    enum Booster: Sendable {
        case trees(Forest)
        /// `weights[feature * groupCount + group]`, the bias after the last feature.
        case linear(weights: [Float])
    }

    /// One tree node in 12 bytes, trees numbered breadth-first so that a split's right child is `left + 1`. A leaf
    /// has ``leafFlag``, its own index in `left` (a walk that reaches it stays there) and its value in `value`. For a
    /// categorical split, `value` holds the index of the node's category range in ``Forest/categoryRanges``.
    struct Node: Sendable {
        var value: Float
        var left: Int32
        /// The feature index, with ``defaultLeftFlag``, ``categoricalFlag`` and ``leafFlag``.
        var feature: UInt32

        static let defaultLeftFlag: UInt32 = 1 << 31
        static let categoricalFlag: UInt32 = 1 << 30
        static let leafFlag: UInt32 = 1 << 29
        static let featureMask: UInt32 = (1 << 29) - 1
    }

    struct Forest: Sendable {
        var nodes: [Node] = []
        /// The node index of each tree's root.
        var roots: [Int32] = []
        /// The depth of each tree's deepest leaf: a walk of that many steps ends on a leaf from any row.
        var depths: [Int32] = []
        /// The output group of each tree.
        var groups: [Int32] = []
        /// DART's per-tree weights; empty for gbtree.
        var weights: [Float] = []
        /// `(start, count)` of each categorical node's bit set in ``categoryBits``.
        var categoryRanges: [(start: Int32, count: Int32)] = []
        var categoryBits: [UInt32] = []
    }

    /// Why a model file cannot be used.
    public struct LoadError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// The number of values ``predict(rows:rowCount:into:)`` writes per row.
    public var outputsPerRow: Int { transform == .softmaxClass ? 1 : groupCount }

    /// The largest category value a categorical split may name (XGBoost's own bound is 2^24 - 1).
    static let maximumCategory = (1 << 24) - 1
    /// The most bit-set words all categorical splits of a model may take together (64 MiB).
    static let maximumCategoryWords = 1 << 24
}

// MARK: - Loading

extension XGBoostModel {
    /// Loads a model from the bytes of a model file, detecting JSON and UBJSON; XGBoost's legacy binary format and
    /// pickles are refused with a message saying how to re-save the model.
    public init(modelFile bytes: [UInt8]) throws(LoadError) {
        let document: JSONValue
        switch Self.format(of: bytes) {
        case .json:
            do { document = try JSONParser.parse(bytes) } catch {
                throw LoadError("The model file is not valid JSON: \(error.message) at byte \(error.offset).")
            }
        case .ubjson:
            do { document = try UBJSONParser.parse(bytes) } catch {
                throw LoadError("The model file is not valid UBJSON: \(error.message) at byte \(error.offset).")
            }
        case .pickle:
            throw LoadError(
                "The model file is a Python pickle, which Strait does not load. Load it in Python and save the booster in XGBoost's JSON format: booster.save_model('model.json')."
            )
        case .legacyBinary:
            throw LoadError(
                "The model file is in XGBoost's legacy binary format, which Strait does not load. Load it with XGBoost and save it in the JSON format: booster.save_model('model.json')."
            )
        }
        try self.init(document: document)
    }

    enum Format { case json, ubjson, pickle, legacyBinary }

    static func format(of bytes: [UInt8]) -> Format {
        var index = 0
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        guard index < bytes.count else { return .json }  // empty: the JSON parser says so
        if bytes[index] == 0x80 { return .pickle }
        guard bytes[index] == UInt8(ascii: "{") else { return .legacyBinary }
        var next = index + 1
        while next < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[next]) { next += 1 }
        if next == bytes.count || [UInt8(ascii: "\""), UInt8(ascii: "}")].contains(bytes[next]) { return .json }
        return .ubjson
    }

    /// Builds the model from a parsed model document (`{"learner": …, "version": […]}`).
    public init(document: JSONValue) throws(LoadError) {
        guard let learner = document["learner"] else {
            throw LoadError("The model document has no 'learner': it is not an XGBoost model.")
        }
        let parameters = try Self.object(learner["learner_model_param"], "learner.learner_model_param")
        let featureCount = try Self.integer(parameters["num_feature"], "num_feature", range: 1...Int(Node.featureMask))
        let classCount = try Self.integer(parameters["num_class"], "num_class", range: 0...100_000, default: 0)
        let targetCount = try Self.integer(parameters["num_target"], "num_target", range: 1...100_000, default: 1)
        guard let objective = learner["objective"]?["name"]?.stringValue else {
            throw LoadError("The model has no objective name (learner.objective.name).")
        }
        let transform = try Self.transform(for: objective)
        let isMultiClass = objective.hasPrefix("multi:")
        guard !isMultiClass || classCount >= 1 else {
            throw LoadError("The model's objective \(objective) needs num_class, which the model does not record.")
        }
        let groupCount = isMultiClass ? classCount : max(classCount, targetCount)

        let baseScores = try Self.floats(inText: parameters["base_score"], "base_score")
        guard baseScores.count == 1 || baseScores.count == groupCount else {
            throw LoadError("base_score has \(baseScores.count) values; the model has \(groupCount) outputs.")
        }
        let baseMargin = (0..<groupCount).map {
            Self.margin(fromBaseScore: baseScores[baseScores.count == 1 ? 0 : $0], objective: objective)
        }

        let gradientBooster = try Self.object(learner["gradient_booster"], "learner.gradient_booster")
        let boosterName = gradientBooster["name"]?.stringValue ?? ""
        let booster: Booster
        switch boosterName {
        case "gbtree":
            booster = .trees(
                try Self.forest(gradientBooster["model"], featureCount: featureCount, groupCount: groupCount, dart: nil)
            )
        case "dart":
            let weights = try Self.floatArray(gradientBooster["weight_drop"], "weight_drop")
            booster = .trees(
                try Self.forest(
                    gradientBooster["gbtree"]?["model"],
                    featureCount: featureCount,
                    groupCount: groupCount,
                    dart: weights
                )
            )
        case "gblinear":
            let weights = try Self.floatArray(gradientBooster["model"]?["weights"], "gblinear weights")
            guard weights.count == (featureCount + 1) * groupCount else {
                throw LoadError(
                    "The linear model has \(weights.count) weights; \(featureCount) features and \(groupCount) outputs need \((featureCount + 1) * groupCount)."
                )
            }
            booster = .linear(weights: weights)
        default:
            throw LoadError("Unsupported booster '\(boosterName)': Strait serves gbtree, dart and gblinear models.")
        }
        self.objective = objective
        self.featureCount = featureCount
        self.groupCount = groupCount
        self.classCount = classCount
        self.baseMargin = baseMargin
        self.transform = transform
        self.booster = booster
    }

    static func transform(for objective: String) throws(LoadError) -> Transform {
        switch objective {
        case "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror",
            "reg:quantileerror", "binary:logitraw", "rank:pairwise", "rank:ndcg", "rank:map":
            return .identity
        case "reg:logistic", "binary:logistic": return .sigmoid
        case "binary:hinge": return .hinge
        case "count:poisson", "reg:gamma", "reg:tweedie", "survival:cox": return .exponential
        case "multi:softmax": return .softmaxClass
        case "multi:softprob": return .softmaxProbabilities
        default: throw LoadError("Unsupported objective '\(objective)'.")
        }
    }

    /// XGBoost's `ProbToMargin`: the model stores base_score in output space; predictions start from its margin.
    static func margin(fromBaseScore score: Float, objective: String) -> Float {
        switch objective {
        case "reg:logistic", "binary:logistic": return -logf(1.0 / score - 1.0)
        case "count:poisson", "reg:gamma", "reg:tweedie", "survival:cox": return logf(score)
        default: return score
        }
    }

    private static func forest(
        _ model: JSONValue?,
        featureCount: Int,
        groupCount: Int,
        dart: [Float]?
    ) throws(LoadError) -> Forest {
        let model = try object(model, "gradient_booster.model")
        guard let trees = model["trees"]?.arrayValue else { throw LoadError("The tree model has no 'trees' array.") }
        let treeInfo = try integerArray(model["tree_info"], "tree_info")
        guard treeInfo.count == trees.count else {
            throw LoadError("tree_info has \(treeInfo.count) entries for \(trees.count) trees.")
        }
        if let dart, dart.count != trees.count {
            throw LoadError("weight_drop has \(dart.count) entries for \(trees.count) trees.")
        }
        var forest = Forest()
        forest.weights = dart ?? []
        for (position, tree) in trees.enumerated() {
            let group = treeInfo[position]
            guard group >= 0, group < groupCount else {
                throw LoadError("Tree \(position) belongs to output \(group); the model has \(groupCount).")
            }
            forest.groups.append(Int32(group))
            do throws(LoadError) {
                try appendTree(tree, to: &forest, featureCount: featureCount)
            } catch {
                throw LoadError("Tree \(position): \(error.message)")
            }
        }
        return forest
    }

    private static func appendTree(_ tree: JSONValue, to forest: inout Forest, featureCount: Int) throws(LoadError) {
        let parameters = try object(tree["tree_param"], "tree_param")
        let nodeCount = try integer(parameters["num_nodes"], "num_nodes", range: 1...(1 << 26))
        let leafVector = try integer(parameters["size_leaf_vector"], "size_leaf_vector", range: 0...1 << 20, default: 0)
        guard leafVector <= 1 else {
            throw LoadError("vector-leaf (multi_output_tree) models are not supported; train with one output per tree.")
        }
        let left = try integerArray(tree["left_children"], "left_children")
        let right = try integerArray(tree["right_children"], "right_children")
        let features = try integerArray(tree["split_indices"], "split_indices")
        let conditions = try floatArray(tree["split_conditions"], "split_conditions")
        let defaultLeft = try integerArray(tree["default_left"], "default_left")
        let splitType = try integerArray(tree["split_type"], "split_type", default: [])
        for (name, count) in [
            ("left_children", left.count), ("right_children", right.count), ("split_indices", features.count),
            ("split_conditions", conditions.count), ("default_left", defaultLeft.count),
        ] where count != nodeCount {
            throw LoadError("\(name) has \(count) entries; the tree has \(nodeCount) nodes.")
        }
        guard splitType.isEmpty || splitType.count == nodeCount else {
            throw LoadError("split_type has \(splitType.count) entries; the tree has \(nodeCount) nodes.")
        }

        // Categories of categorical splits: node → the category values that go right.
        let categoryNodes = try integerArray(tree["categories_nodes"], "categories_nodes", default: [])
        let categorySegments = try integerArray(tree["categories_segments"], "categories_segments", default: [])
        let categorySizes = try integerArray(tree["categories_sizes"], "categories_sizes", default: [])
        let categories = try integerArray(tree["categories"], "categories", default: [])
        guard categoryNodes.count == categorySegments.count, categoryNodes.count == categorySizes.count else {
            throw LoadError("categories_nodes, categories_segments and categories_sizes differ in length.")
        }
        var categoryRangeOfNode: [Int: Int32] = [:]
        for (entry, node) in categoryNodes.enumerated() {
            let start = categorySegments[entry]
            let size = categorySizes[entry]
            guard node >= 0, node < nodeCount, start >= 0, size >= 0, start <= categories.count - size else {
                throw LoadError("Categorical split \(entry) points outside the tree or its categories.")
            }
            guard categoryRangeOfNode[node] == nil else {
                throw LoadError("Node \(node) has its categories listed twice.")
            }
            let values = categories[start..<start + size]
            guard values.allSatisfy({ $0 >= 0 && $0 <= maximumCategory }) else {
                throw LoadError("A categorical split names a category outside 0...\(maximumCategory).")
            }
            let wordCount = (values.max() ?? -1) / 32 + 1
            guard forest.categoryBits.count + wordCount <= Self.maximumCategoryWords else {
                throw LoadError("The model's categorical splits name too many categories.")
            }
            var bits = [UInt32](repeating: 0, count: wordCount)
            for value in values { bits[value / 32] |= 1 << UInt32(value % 32) }
            categoryRangeOfNode[node] = Int32(forest.categoryRanges.count)
            forest.categoryRanges.append((Int32(forest.categoryBits.count), Int32(wordCount)))
            forest.categoryBits.append(contentsOf: bits)
        }

        guard forest.nodes.count + nodeCount < Int(Int32.max) else { throw LoadError("The model has too many nodes.") }
        // Check every node, then lay the tree out breadth-first from its root (see ``Node``).
        var split: [(feature: UInt32, value: Float)] = []
        split.reserveCapacity(nodeCount)
        for node in 0..<nodeCount {
            if left[node] == -1 {
                guard right[node] == -1 else { throw LoadError("Node \(node) has a right child but no left child.") }
                split.append((Node.leafFlag, conditions[node]))
                continue
            }
            guard left[node] > 0, left[node] < nodeCount, right[node] > 0, right[node] < nodeCount else {
                throw LoadError("Node \(node) has a child outside the tree.")
            }
            guard features[node] >= 0, features[node] < featureCount else {
                throw LoadError("Node \(node) splits on feature \(features[node]); the model has \(featureCount).")
            }
            var feature = UInt32(features[node])
            if defaultLeft[node] != 0 { feature |= Node.defaultLeftFlag }
            var value = conditions[node]
            if !splitType.isEmpty, splitType[node] == 1 {
                feature |= Node.categoricalFlag
                // A categorical split with no recorded categories sends every valid category left.
                let range =
                    categoryRangeOfNode[node]
                    ?? {
                        forest.categoryRanges.append((Int32(forest.categoryBits.count), 0))
                        return Int32(forest.categoryRanges.count - 1)
                    }()
                value = Float(bitPattern: UInt32(range))
            }
            split.append((feature, value))
        }
        // Every node must be reached at most once from the root, so every walk ends at a leaf.
        var visited = [Bool](repeating: false, count: nodeCount)
        let root = forest.nodes.count
        forest.nodes.append(Node(value: 0, left: 0, feature: 0))
        var queue: [(node: Int, slot: Int, depth: Int32)] = [(0, root, 0)]
        var head = 0
        var deepest: Int32 = 0
        while head < queue.count {
            let (node, slot, depth) = queue[head]
            head += 1
            guard !visited[node] else {
                throw LoadError("Node \(node) is reached twice: the tree has a cycle or a shared child.")
            }
            visited[node] = true
            let (feature, value) = split[node]
            if feature & Node.leafFlag != 0 {
                forest.nodes[slot] = Node(value: value, left: Int32(slot), feature: Node.leafFlag)
                deepest = max(deepest, depth)
                continue
            }
            let children = forest.nodes.count
            forest.nodes.append(Node(value: 0, left: 0, feature: 0))
            forest.nodes.append(Node(value: 0, left: 0, feature: 0))
            forest.nodes[slot] = Node(value: value, left: Int32(children), feature: feature)
            queue.append((left[node], children, depth + 1))
            queue.append((right[node], children + 1, depth + 1))
        }
        forest.roots.append(Int32(root))
        forest.depths.append(deepest)
    }

    // MARK: Reading fields

    private static func object(_ value: JSONValue?, _ name: String) throws(LoadError) -> JSONValue {
        guard let value, value.objectValue != nil else { throw LoadError("The model has no object '\(name)'.") }
        return value
    }

    /// XGBoost writes parameters as strings ("4") and arrays as numbers; both are accepted.
    private static func integer(
        _ value: JSONValue?,
        _ name: String,
        range: ClosedRange<Int>,
        default fallback: Int? = nil
    ) throws(LoadError) -> Int {
        let parsed: Int?
        switch value {
        case .number(let number)?: parsed = JSONValue.number(number).intValue
        case .string(let text)?: parsed = Int(text)
        case nil: parsed = fallback
        default: parsed = nil
        }
        guard let parsed, range.contains(parsed) else {
            throw LoadError(
                "The model's \(name) is missing or not an integer in \(range.lowerBound)...\(range.upperBound)."
            )
        }
        return parsed
    }

    private static func integerArray(
        _ value: JSONValue?,
        _ name: String,
        default fallback: [Int]? = nil
    ) throws(LoadError) -> [Int] {
        guard let elements = value?.arrayValue else {
            if let fallback { return fallback }
            throw LoadError("The model has no array '\(name)'.")
        }
        var result: [Int] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            switch element {
            case .number(let number) where number.rounded() == number && abs(number) < 4.0e9: result.append(Int(number))
            case .bool(let flag): result.append(flag ? 1 : 0)
            default: throw LoadError("'\(name)' holds a value that is not an integer.")
            }
        }
        return result
    }

    private static func floatArray(_ value: JSONValue?, _ name: String) throws(LoadError) -> [Float] {
        guard let elements = value?.arrayValue else { throw LoadError("The model has no array '\(name)'.") }
        var result: [Float] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard case .number(let number) = element else {
                throw LoadError("'\(name)' holds a value that is not a number.")
            }
            result.append(Float(number))
        }
        return result
    }

    /// base_score: "5E-1" (XGBoost 1.x/2.x) or "[3.9E-1]" / "[a,b,c]" (3.x), or a plain number.
    private static func floats(inText value: JSONValue?, _ name: String) throws(LoadError) -> [Float] {
        switch value {
        case .number(let number)?: return [Float(number)]
        case .string(var text)?:
            if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
            var result: [Float] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let number = Float(part.trimmingSpaces), number.isFinite else {
                    throw LoadError("The model's \(name) '\(text)' is not a list of numbers.")
                }
                result.append(number)
            }
            return result
        default: throw LoadError("The model has no \(name).")
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result.removeFirst() }
        while result.last == " " { result.removeLast() }
        return result
    }
}

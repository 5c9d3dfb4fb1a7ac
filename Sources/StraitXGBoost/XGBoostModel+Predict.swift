#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension XGBoostModel {
    /// Rows per block on the batch path: trees outside, rows inside, so a tree's nodes stay in cache while a block
    /// of rows walks it. Each row still adds its trees' leaves in tree order, as XGBoost does.
    static let rowBlock = 64

    /// Computes raw margins (`groupCount` per row) for `rowCount` dense rows of ``featureCount`` values each, NaN
    /// meaning missing. `margins` must hold `rowCount * groupCount` values. Allocates nothing.
    public func margins(
        rows: UnsafeBufferPointer<Float>,
        rowCount: Int,
        into margins: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(rows.count >= rowCount * featureCount && margins.count >= rowCount * groupCount)
        guard rowCount > 0 else { return }
        let groups = groupCount
        for row in 0..<rowCount {
            for group in 0..<groups { margins[row * groups + group] = baseMargin[group] }
        }
        switch booster {
        case .trees(let forest):
            forest.accumulate(rows: rows, rowCount: rowCount, featureCount: featureCount, groups: groups, into: margins)
        case .linear(let weights):
            weights.withUnsafeBufferPointer { weights in
                let bias = featureCount * groups
                for row in 0..<rowCount {
                    let values = rows.baseAddress! + row * featureCount
                    for group in 0..<groups {
                        // XGBoost's GBLinear::Pred: bias + base first, then each present feature in order.
                        // XGBoost 3 starts every output group of a linear model from the first base margin.
                        var sum = weights[bias + group] + baseMargin[0]
                        for feature in 0..<featureCount where !values[feature].isNaN {
                            sum += values[feature] * weights[feature * groups + group]
                        }
                        margins[row * groups + group] = sum
                    }
                }
            }
        }
    }

    /// Predicts ``outputsPerRow`` values per row, with the objective's transform applied (probabilities for
    /// logistic and softprob, the class index for softmax, exp for Poisson/Gamma/Tweedie/Cox …). `output` must hold
    /// `rowCount * groupCount` values (softmax uses them as scratch).
    public func predict(
        rows: UnsafeBufferPointer<Float>,
        rowCount: Int,
        into output: UnsafeMutableBufferPointer<Float>
    ) {
        margins(rows: rows, rowCount: rowCount, into: output)
        applyTransform(rowCount: rowCount, to: output)
    }

    /// Applies the objective's output transform to `rowCount` rows of margins, in place.
    public func applyTransform(rowCount: Int, to values: UnsafeMutableBufferPointer<Float>) {
        let groups = groupCount
        switch transform {
        case .identity: return
        case .sigmoid:
            for index in 0..<rowCount * groups { values[index] = Self.sigmoid(values[index]) }
        case .hinge:
            for index in 0..<rowCount * groups { values[index] = values[index] > 0 ? 1 : 0 }
        case .exponential:
            for index in 0..<rowCount * groups { values[index] = expf(values[index]) }
        case .softmaxProbabilities:
            for row in 0..<rowCount {
                Self.softmax(UnsafeMutableBufferPointer(rebasing: values[row * groups..<(row + 1) * groups]))
            }
        case .softmaxClass:
            // One value per row: the first index of the largest margin, packed to the front.
            for row in 0..<rowCount {
                var best = 0
                for group in 1..<max(groups, 1) where values[row * groups + group] > values[row * groups + best] {
                    best = group
                }
                values[row] = Float(best)
            }
        }
    }

    /// XGBoost's `common::Sigmoid`.
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        1.0 / (expf(min(-x, 88.7)) + 1.0 + 1e-16)
    }

    /// XGBoost's `common::Softmax`: the max subtracted, exponentials summed in `Double`.
    static func softmax(_ values: UnsafeMutableBufferPointer<Float>) {
        guard var largest = values.first else { return }
        for value in values.dropFirst() { largest = fmaxf(value, largest) }
        var sum: Double = 0
        for index in values.indices {
            values[index] = expf(values[index] - largest)
            sum += Double(values[index])
        }
        let total = Float(sum)
        for index in values.indices { values[index] /= total }
    }
}

extension XGBoostModel.Forest {
    /// Adds every tree's leaf to the margins, in tree order for each row (XGBoost's order, so sums are identical).
    ///
    /// Walks are branch-free and of fixed length (each tree's depth; leaves point to themselves), and eight run in
    /// lockstep — eight trees for one row, eight rows through one tree on the batch path — so their memory loads
    /// overlap. Forests without categorical splits use a walker without that test.
    func accumulate(
        rows: UnsafeBufferPointer<Float>,
        rowCount: Int,
        featureCount: Int,
        groups: Int,
        into margins: UnsafeMutableBufferPointer<Float>
    ) {
        if categoryRanges.isEmpty {
            accumulate(
                NumericSplits.self,
                rows: rows,
                rowCount: rowCount,
                featureCount: featureCount,
                groups: groups,
                into: margins
            )
        } else {
            accumulate(
                AnySplits.self,
                rows: rows,
                rowCount: rowCount,
                featureCount: featureCount,
                groups: groups,
                into: margins
            )
        }
    }

    private func accumulate<Kind: SplitKind>(
        _ kind: Kind.Type,
        rows: UnsafeBufferPointer<Float>,
        rowCount: Int,
        featureCount: Int,
        groups: Int,
        into margins: UnsafeMutableBufferPointer<Float>
    ) {
        nodes.withUnsafeBufferPointer { nodes in
            categoryRanges.withUnsafeBufferPointer { ranges in
                categoryBits.withUnsafeBufferPointer { bits in
                    roots.withUnsafeBufferPointer { roots in
                        depths.withUnsafeBufferPointer { depths in
                            self.groups.withUnsafeBufferPointer { treeGroups in
                                weights.withUnsafeBufferPointer { weights in
                                    let pass = Pass<Kind>(
                                        walker: Walker<Kind>(nodes: nodes.baseAddress!, ranges: ranges, bits: bits),
                                        roots: roots,
                                        depths: depths,
                                        treeGroups: treeGroups,
                                        weights: weights,
                                        groups: groups,
                                        out: margins.baseAddress!
                                    )
                                    if rowCount == 1 {
                                        pass.oneRow(rows.baseAddress!)
                                    } else {
                                        pass.manyRows(rows.baseAddress!, rowCount: rowCount, featureCount: featureCount)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a forest has categorical splits, as a type, so the walker for numeric-only forests has no such test.
protocol SplitKind { static var hasCategorical: Bool { get } }
enum NumericSplits: SplitKind { static var hasCategorical: Bool { false } }
enum AnySplits: SplitKind { static var hasCategorical: Bool { true } }

/// One prediction call over a forest, through raw pointers taken once.
private struct Pass<Kind: SplitKind> {
    let walker: Walker<Kind>
    let roots: UnsafeBufferPointer<Int32>
    let depths: UnsafeBufferPointer<Int32>
    let treeGroups: UnsafeBufferPointer<Int32>
    /// DART's tree weights, or empty.
    let weights: UnsafeBufferPointer<Float>
    let groups: Int
    let out: UnsafeMutablePointer<Float>

    @inline(__always)
    private func add(tree: Int, row: Int, leaf: Int32) {
        let value = walker.nodes[Int(leaf)].value
        let slot = row * groups + (groups == 1 ? 0 : Int(treeGroups[tree]))
        out[slot] += weights.isEmpty ? value : weights[tree] * value
    }

    /// One row: eight trees walked together.
    func oneRow(_ row: UnsafePointer<Float>) {
        let treeCount = roots.count
        var tree = 0
        while tree + 8 <= treeCount {
            var i0 = roots[tree]
            var i1 = roots[tree + 1]
            var i2 = roots[tree + 2]
            var i3 = roots[tree + 3]
            var i4 = roots[tree + 4]
            var i5 = roots[tree + 5]
            var i6 = roots[tree + 6]
            var i7 = roots[tree + 7]
            var depth = depths[tree]
            for offset in 1..<8 { depth = max(depth, depths[tree + offset]) }
            for _ in 0..<depth {
                i0 = walker.step(i0, row)
                i1 = walker.step(i1, row)
                i2 = walker.step(i2, row)
                i3 = walker.step(i3, row)
                i4 = walker.step(i4, row)
                i5 = walker.step(i5, row)
                i6 = walker.step(i6, row)
                i7 = walker.step(i7, row)
            }
            add(tree: tree, row: 0, leaf: i0)
            add(tree: tree + 1, row: 0, leaf: i1)
            add(tree: tree + 2, row: 0, leaf: i2)
            add(tree: tree + 3, row: 0, leaf: i3)
            add(tree: tree + 4, row: 0, leaf: i4)
            add(tree: tree + 5, row: 0, leaf: i5)
            add(tree: tree + 6, row: 0, leaf: i6)
            add(tree: tree + 7, row: 0, leaf: i7)
            tree += 8
        }
        while tree < treeCount {
            var index = roots[tree]
            for _ in 0..<depths[tree] { index = walker.step(index, row) }
            add(tree: tree, row: 0, leaf: index)
            tree += 1
        }
    }

    /// Many rows: blocks of rows, trees outside, eight rows walked together through each tree.
    func manyRows(_ base: UnsafePointer<Float>, rowCount: Int, featureCount: Int) {
        var blockStart = 0
        while blockStart < rowCount {
            let blockEnd = min(blockStart + XGBoostModel.rowBlock, rowCount)
            for tree in 0..<roots.count {
                let root = roots[tree]
                let depth = depths[tree]
                var row = blockStart
                while row + 8 <= blockEnd {
                    let r = base + row * featureCount
                    var i0 = root
                    var i1 = root
                    var i2 = root
                    var i3 = root
                    var i4 = root
                    var i5 = root
                    var i6 = root
                    var i7 = root
                    for _ in 0..<depth {
                        i0 = walker.step(i0, r)
                        i1 = walker.step(i1, r + featureCount)
                        i2 = walker.step(i2, r + 2 * featureCount)
                        i3 = walker.step(i3, r + 3 * featureCount)
                        i4 = walker.step(i4, r + 4 * featureCount)
                        i5 = walker.step(i5, r + 5 * featureCount)
                        i6 = walker.step(i6, r + 6 * featureCount)
                        i7 = walker.step(i7, r + 7 * featureCount)
                    }
                    add(tree: tree, row: row, leaf: i0)
                    add(tree: tree, row: row + 1, leaf: i1)
                    add(tree: tree, row: row + 2, leaf: i2)
                    add(tree: tree, row: row + 3, leaf: i3)
                    add(tree: tree, row: row + 4, leaf: i4)
                    add(tree: tree, row: row + 5, leaf: i5)
                    add(tree: tree, row: row + 6, leaf: i6)
                    add(tree: tree, row: row + 7, leaf: i7)
                    row += 8
                }
                while row < blockEnd {
                    var index = root
                    let r = base + row * featureCount
                    for _ in 0..<depth { index = walker.step(index, r) }
                    add(tree: tree, row: row, leaf: index)
                    row += 1
                }
            }
            blockStart = blockEnd
        }
    }
}

/// One step of a walk: from a split to the child the row goes to, from a leaf to itself. Branch-free for numeric
/// splits: left when `value < threshold`, or when the value is missing and the split's default is left.
struct Walker<Kind: SplitKind> {
    let nodes: UnsafePointer<XGBoostModel.Node>
    let ranges: UnsafeBufferPointer<(start: Int32, count: Int32)>
    let bits: UnsafeBufferPointer<UInt32>

    @inline(__always)
    func step(_ index: Int32, _ row: UnsafePointer<Float>) -> Int32 {
        let node = nodes[Int(index)]
        let feature = node.feature
        let value = row[Int(feature & XGBoostModel.Node.featureMask)]
        let less: UInt32 = value < node.value ? 1 : 0
        let missingLeft: UInt32 = (value.isNaN ? 1 : 0) & (feature >> 31)
        var goLeft = less | missingLeft | ((feature >> 29) & 1)
        if Kind.hasCategorical, feature & XGBoostModel.Node.categoricalFlag != 0, !value.isNaN {
            goLeft = categoryGoesRight(value, range: Int(node.value.bitPattern)) ? 0 : 1
        }
        return node.left &+ Int32(bitPattern: goLeft ^ 1)
    }

    /// XGBoost's `common::Decision`, negated: a valid category in the split's set goes right; any other value
    /// (negative, too large, not in the set) goes left.
    @inline(__always)
    func categoryGoesRight(_ value: Float, range: Int) -> Bool {
        guard value >= 0, value < 2_147_483_648.0 else { return false }
        let category = Int(value)
        let (start, count) = ranges[range]
        let word = category >> 5
        guard word < Int(count) else { return false }
        return bits[Int(start) + word] & (1 << UInt32(category & 31)) != 0
    }
}

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
    func accumulate(
        rows: UnsafeBufferPointer<Float>,
        rowCount: Int,
        featureCount: Int,
        groups: Int,
        into margins: UnsafeMutableBufferPointer<Float>
    ) {
        nodes.withUnsafeBufferPointer { nodes in
            categoryRanges.withUnsafeBufferPointer { ranges in
                categoryBits.withUnsafeBufferPointer { bits in
                    let walker = Walker(nodes: nodes.baseAddress!, ranges: ranges, bits: bits)
                    let rowBase = rows.baseAddress!
                    var blockStart = 0
                    while blockStart < rowCount {
                        let blockEnd = min(blockStart + XGBoostModel.rowBlock, rowCount)
                        for tree in 0..<roots.count {
                            let root = Int(roots[tree])
                            let group = Int(groups == 1 ? 0 : self.groups[tree])
                            let weight = weights.isEmpty ? nil : weights[tree]
                            for row in blockStart..<blockEnd {
                                let leaf = walker.leaf(from: root, row: rowBase + row * featureCount)
                                if let weight {
                                    margins[row * groups + group] += weight * leaf
                                } else {
                                    margins[row * groups + group] += leaf
                                }
                            }
                        }
                        blockStart = blockEnd
                    }
                }
            }
        }
    }
}

/// Walks one tree for one row.
struct Walker {
    let nodes: UnsafePointer<XGBoostModel.Node>
    let ranges: UnsafeBufferPointer<(start: Int32, count: Int32)>
    let bits: UnsafeBufferPointer<UInt32>

    @inline(__always)
    func leaf(from root: Int, row: UnsafePointer<Float>) -> Float {
        var index = root
        while true {
            let node = nodes[index]
            if node.left < 0 { return node.value }
            let feature = node.feature
            let value = row[Int(feature & XGBoostModel.Node.featureMask)]
            let goLeft: Bool
            if value.isNaN {
                goLeft = feature & XGBoostModel.Node.defaultLeftFlag != 0
            } else if feature & XGBoostModel.Node.categoricalFlag != 0 {
                goLeft = !categoryGoesRight(value, range: Int(node.value.bitPattern))
            } else {
                goLeft = value < node.value
            }
            index = Int(goLeft ? node.left : node.right)
        }
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

/// Dense rows for prediction: `rowCount` rows of `featureCount` values, NaN meaning missing.
public struct FeatureMatrix: Sendable {
    public var values: [Float] = []
    public var rowCount = 0
    public let featureCount: Int

    public init(featureCount: Int) { self.featureCount = featureCount }

    mutating func startRow() {
        values.append(contentsOf: repeatElement(Float.nan, count: featureCount))
        rowCount += 1
    }
}

/// Why a payload cannot be read, worded for the caller (the container answers these with 400).
public struct PayloadError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads the SageMaker XGBoost container's request formats into dense rows, in one pass over the bytes.
public enum PayloadParser {
    /// `text/csv`: no header, one row per line (`\n` or `\r\n`), an empty field is a missing value, `nan` too. The
    /// delimiter is a comma unless the first line has none and has a tab, semicolon or bar (as the container's
    /// sniffing finds them). Every row must have exactly the model's number of features.
    public static func csv(_ bytes: UnsafeRawBufferPointer, featureCount: Int) throws(PayloadError) -> FeatureMatrix {
        var matrix = FeatureMatrix(featureCount: featureCount)
        let delimiter = csvDelimiter(bytes)
        matrix.values.reserveCapacity(min(bytes.count, 1 << 20))
        var lineStart = 0
        var line = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            let next = lineEnd + 1
            if lineEnd > lineStart, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            line += 1
            if !isBlank(bytes, lineStart, lineEnd) {
                try parseCSVRow(bytes, lineStart, lineEnd, delimiter: delimiter, line: line, into: &matrix)
            }
            lineStart = next
        }
        return matrix
    }

    private static func parseCSVRow(
        _ bytes: UnsafeRawBufferPointer,
        _ start: Int,
        _ end: Int,
        delimiter: UInt8,
        line: Int,
        into matrix: inout FeatureMatrix
    ) throws(PayloadError) {
        let rowOffset = matrix.values.count
        matrix.startRow()
        var fieldStart = start
        var column = 0
        while true {
            var fieldEnd = fieldStart
            while fieldEnd < end, bytes[fieldEnd] != delimiter { fieldEnd += 1 }
            guard column < matrix.featureCount else {
                throw featureCountError(
                    found: countFields(bytes, start, end, delimiter: delimiter),
                    expected: matrix.featureCount,
                    line: line
                )
            }
            let (trimmedStart, trimmedEnd) = trim(bytes, fieldStart, fieldEnd)
            if fieldStart < fieldEnd {  // an empty field is missing; one of only spaces is not a number
                guard
                    let value = try number(
                        bytes,
                        trimmedStart,
                        trimmedEnd,
                        where: "line \(line), column \(column + 1)"
                    )
                else {
                    throw PayloadError(
                        "Unable to parse the CSV payload: line \(line), column \(column + 1) ('\(text(bytes, trimmedStart, trimmedEnd))') is not a finite number."
                    )
                }
                matrix.values[rowOffset + column] = value
            }
            column += 1
            guard fieldEnd < end else { break }
            fieldStart = fieldEnd + 1
        }
        guard column == matrix.featureCount else {
            throw featureCountError(found: column, expected: matrix.featureCount, line: line)
        }
    }

    /// `text/libsvm`: one row per line, `label index:value …`, as the container reads it: tokens without a colon
    /// (the label) are ignored; absent features are missing; a repeated index adds up; when the smallest index in
    /// the whole payload is 1 or more the indices are taken as 1-based, else as 0-based; lines after the last one
    /// with a feature are dropped. The highest index must fit the model's feature count.
    public static func libsvm(_ bytes: UnsafeRawBufferPointer, featureCount: Int) throws(PayloadError) -> FeatureMatrix
    {
        var entries: [(row: Int32, feature: Int32, value: Float)] = []
        var lineStart = 0
        var line = 0
        var smallestIndex = Int.max
        var largestIndex = -1
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            var index = lineStart
            while true {
                while index < lineEnd, isSpace(bytes[index]) { index += 1 }
                guard index < lineEnd else { break }
                var tokenEnd = index
                while tokenEnd < lineEnd, !isSpace(bytes[tokenEnd]) { tokenEnd += 1 }
                var colon = index
                while colon < tokenEnd, bytes[colon] != UInt8(ascii: ":") { colon += 1 }
                if colon < tokenEnd {
                    var valueEnd = colon + 1
                    while valueEnd < tokenEnd, bytes[valueEnd] != UInt8(ascii: ":") { valueEnd += 1 }
                    guard let feature = parseIndex(bytes, index, colon),
                        let value = try number(
                            bytes,
                            colon + 1,
                            valueEnd,
                            where: "line \(line + 1) of the libsvm payload"
                        )
                    else {
                        throw PayloadError(
                            "Unable to parse the libsvm payload: line \(line + 1), '\(text(bytes, index, tokenEnd))' is not index:value."
                        )
                    }
                    // Past the model's features even as a 1-based index: refused before anything is stored.
                    guard feature <= featureCount else {
                        throw PayloadError(
                            "Feature size of libsvm inference data \(feature + 1) is larger than feature size of trained model \(featureCount)."
                        )
                    }
                    smallestIndex = min(smallestIndex, feature)
                    largestIndex = max(largestIndex, feature)
                    guard line < Int(Int32.max) else { throw PayloadError("The libsvm payload has too many lines.") }
                    entries.append((Int32(line), Int32(feature), value))
                }
                index = tokenEnd
            }
            line += 1
            lineStart = lineEnd + 1
        }
        let shift = smallestIndex >= 1 && smallestIndex != Int.max ? 1 : 0
        guard largestIndex - shift < featureCount else {
            throw PayloadError(
                "Feature size of libsvm inference data \(largestIndex - shift + 1) is larger than feature size of trained model \(featureCount)."
            )
        }
        var matrix = FeatureMatrix(featureCount: featureCount)
        let rowCount = Int(entries.last?.row ?? -1) + 1
        // Rows are predicted dense: bound the cells a sparse payload (or a run of blank lines) may ask for.
        guard rowCount.multipliedReportingOverflow(by: featureCount).partialValue <= maximumDenseCells,
            !rowCount.multipliedReportingOverflow(by: featureCount).overflow
        else {
            throw PayloadError(
                "The libsvm payload has \(rowCount) rows of \(featureCount) features, more than \(maximumDenseCells) values: send fewer rows per request."
            )
        }
        matrix.values = [Float](repeating: .nan, count: rowCount * featureCount)
        matrix.rowCount = rowCount
        for entry in entries {
            let slot = Int(entry.row) * featureCount + Int(entry.feature) - shift
            matrix.values[slot] = matrix.values[slot].isNaN ? entry.value : matrix.values[slot] + entry.value
        }
        return matrix
    }

    /// A field's number; `nan` (any case) is a missing value, as NumPy reads it; infinities are refused, as
    /// XGBoost refuses them.
    static func number(
        _ bytes: UnsafeRawBufferPointer,
        _ start: Int,
        _ end: Int,
        where place: @autoclosure () -> String
    ) throws(PayloadError) -> Float? {
        if let value = DecimalParser.parse(bytes, start, end) { return value }
        var word = ""
        for index in start..<min(end, start + 10) { word.unicodeScalars.append(UnicodeScalar(bytes[index] | 0x20)) }
        switch end - start <= 10 ? word : "" {
        case "nan", "+nan", "-nan": return .nan
        case "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity":
            throw PayloadError(
                "Input data contains `inf` or a value too large (\(place())), which XGBoost does not accept."
            )
        default:
            if DecimalParser.isOutOfRange(bytes, start, end) {
                throw PayloadError(
                    "Input data contains `inf` or a value too large (\(place())), which XGBoost does not accept."
                )
            }
            return nil
        }
    }

    /// The most values (rows × features) one request may expand to: 128 MiB of Float.
    public static let maximumDenseCells = 1 << 25

    static func featureCountError(found: Int, expected: Int, line: Int) -> PayloadError {
        PayloadError(
            "Feature size of csv inference data (\(found) on line \(line)) is not consistent with feature size of trained model (\(expected))."
        )
    }

    private static func countFields(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, delimiter: UInt8) -> Int
    {
        var count = 1
        for index in start..<end where bytes[index] == delimiter { count += 1 }
        return count
    }

    static func csvDelimiter(_ bytes: UnsafeRawBufferPointer) -> UInt8 {
        var candidates: (tab: Bool, semicolon: Bool, bar: Bool) = (false, false, false)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: ","): return byte
            case UInt8(ascii: "\t"): candidates.tab = true
            case UInt8(ascii: ";"): candidates.semicolon = true
            case UInt8(ascii: "|"): candidates.bar = true
            default: continue
            }
            if byte == UInt8(ascii: "\n") { break }
        }
        if candidates.tab { return UInt8(ascii: "\t") }
        if candidates.semicolon { return UInt8(ascii: ";") }
        if candidates.bar { return UInt8(ascii: "|") }
        return UInt8(ascii: ",")
    }

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    private static func isBlank(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        for index in start..<end where !isSpace(bytes[index]) { return false }
        return true
    }

    @inline(__always)
    private static func trim(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (Int, Int) {
        var start = start
        var end = end
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return (start, end)
    }

    private static func parseIndex(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        guard start < end, end - start <= 10 else { return nil }
        var value = 0
        for index in start..<end {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// A short, printable excerpt of the payload for an error message.
    private static func text(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
        let clipped = min(end, start + 32)
        let excerpt = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<clipped]), as: UTF8.self)
        return clipped < end ? excerpt + "…" : excerpt
    }
}

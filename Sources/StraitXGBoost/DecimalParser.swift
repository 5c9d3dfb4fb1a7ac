#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses decimal numbers from bytes without allocating: digits are gathered into an integer and scaled by an exact
/// power of ten when both fit a `Double` exactly (Clinger's fast path, one correctly rounded operation); anything else
/// goes to `strtod` from a stack copy. The value is then rounded to `Float`, as Python and NumPy do when a CSV
/// payload becomes XGBoost's float32 input.
enum DecimalParser {
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// The longest number text accepted; longer fields are not numbers XGBoost input would hold.
    static let maximumLength = 64

    /// Parses `bytes[start..<end]` (already trimmed) as a finite decimal number. Returns nil for anything else,
    /// including `nan`, `inf`, hexadecimal and numbers too large for a `Float`.
    @inline(__always)
    static func parse(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Float? {
        guard let value = parseRounded(bytes, start, end), value.isFinite else { return nil }
        return value
    }

    /// Whether the bytes are a decimal number whose magnitude is too large for a `Float`.
    static func isOutOfRange(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        parseRounded(bytes, start, end)?.isInfinite ?? false
    }

    /// The decimal number rounded to `Float` (infinite when too large), or nil when the bytes are not one.
    @inline(__always)
    private static func parseRounded(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Float? {
        var index = start
        guard index < end, end - start <= maximumLength else { return nil }
        var negative = false
        if bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var significant = 0
        var exponent = 0
        var sawDigit = false
        while index < end, let digit = digitValue(bytes[index]) {
            sawDigit = true
            if significant < 19 {
                if mantissa != 0 || digit != 0 { significant += 1 }
                mantissa = mantissa &* 10 &+ UInt64(digit)
            } else {
                exponent += 1
                digits += 1
            }
            index += 1
        }
        if index < end, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < end, let digit = digitValue(bytes[index]) {
                sawDigit = true
                if significant < 19 {
                    if mantissa != 0 || digit != 0 { significant += 1 }
                    mantissa = mantissa &* 10 &+ UInt64(digit)
                    exponent -= 1
                } else {
                    digits += 1
                }
                index += 1
            }
        }
        guard sawDigit else { return nil }
        if index < end, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var exponentNegative = false
            if index < end, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            var explicit = 0
            var sawExponentDigit = false
            while index < end, let digit = digitValue(bytes[index]) {
                sawExponentDigit = true
                if explicit < 100_000 { explicit = explicit * 10 + digit }
                index += 1
            }
            guard sawExponentDigit else { return nil }
            exponent += exponentNegative ? -explicit : explicit
        }
        guard index == end else { return nil }
        if digits == 0, mantissa < 1 << 53, abs(exponent) <= 22 {
            var value = Double(mantissa)
            value = exponent < 0 ? value / powersOfTen[-exponent] : value * powersOfTen[exponent]
            return Float(negative ? -value : value)
        }
        return slowParse(bytes, start, end)
    }

    @inline(__always)
    private static func digitValue(_ byte: UInt8) -> Int? {
        byte &- UInt8(ascii: "0") < 10 ? Int(byte &- UInt8(ascii: "0")) : nil
    }

    /// `strtod` on a NUL-terminated stack copy; the syntax was already checked.
    private static func slowParse(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Float? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: maximumLength + 1) { buffer in
            for offset in 0..<(end - start) { buffer[offset] = CChar(bitPattern: bytes[start + offset]) }
            buffer[end - start] = 0
            return Float(strtod(buffer.baseAddress!, nil))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte comparisons and searches for the parsers on the invocation path, on libc's vectorised routines rather than
/// loops one byte at a time (`elementsEqual`, `firstIndex(of:)` on buffer pointers walk the bytes singly).
public enum Bytes {
    /// Whether the two hold the same bytes: lengths, then memcmp.
    @inline(__always)
    public static func equal(_ one: UnsafeBufferPointer<UInt8>, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        guard one.count == other.count else { return false }
        guard let first = one.baseAddress, let second = other.baseAddress else { return true }  // both empty
        return memcmp(first, second, one.count) == 0
    }

    /// Whether `bytes` are exactly `literal`'s.
    @inline(__always)
    public static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        equal(bytes, UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// The offset of the first `byte` in `bytes` at or after `start` (memchr).
    @inline(__always)
    public static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
            let found = memchr(base + start, Int32(byte), bytes.count - start)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}

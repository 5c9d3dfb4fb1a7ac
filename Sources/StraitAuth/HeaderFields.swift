import StraitCore

/// Header fields kept as the bytes they arrived in: one buffer, and for each field, in arrival order, the ranges of
/// its name (lower-case) and its value (without surrounding whitespace) in that buffer. What the data plane's parser
/// hands SigV4 and the forwarder: no `String` is made for a field nobody reads as one.
public struct HeaderFields: Sendable {
    public struct Field: Sendable {
        public var name: Range<Int>
        public var value: Range<Int>

        public init(name: Range<Int>, value: Range<Int>) {
            self.name = name
            self.value = value
        }
    }

    /// The bytes the ranges point into; every name already lower-case.
    public private(set) var bytes: [UInt8]
    /// Four offsets into `bytes` per field: name start and end, value start and end.
    public private(set) var offsets: [Int]

    /// `offsets` holds four per field (see ``offsets``), each range within `bytes`; the names must be lower-case.
    private init(bytes: [UInt8], offsets: [Int]) {
        precondition(offsets.count % 4 == 0, "four offsets per field")
        precondition(Self.rangesFit(offsets, within: bytes.count), "a header field's range lies outside its bytes")
        self.bytes = bytes
        self.offsets = offsets
    }

    /// Whether every field's ranges lie within `count` bytes: reads and writes through the ranges use unchecked
    /// pointers.
    private static func rangesFit(_ offsets: [Int], within count: Int) -> Bool {
        stride(from: 0, to: offsets.count, by: 2).allSatisfy {
            offsets[$0] >= 0 && offsets[$0] <= offsets[$0 + 1] && offsets[$0 + 1] <= count
        }
    }

    /// The fields, in arrival order, read from ``offsets``.
    public struct Fields: RandomAccessCollection {
        let offsets: UnsafeBufferPointer<Int>
        public var startIndex: Int { 0 }
        public var endIndex: Int { offsets.count / 4 }
        public subscript(position: Int) -> Field {
            let base = position * 4
            return Field(name: offsets[base]..<offsets[base + 1], value: offsets[base + 2]..<offsets[base + 3])
        }
    }

    /// Fields from strings: names lower-cased, values as given.
    public init(_ headers: [(name: String, value: String)]) {
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        for header in headers {
            offsets.append(bytes.count)
            bytes.append(contentsOf: header.name.lowercased().utf8)
            offsets += [bytes.count, bytes.count]
            bytes.append(contentsOf: header.value.utf8)
            offsets.append(bytes.count)
        }
        self.init(bytes: bytes, offsets: offsets)
    }

    /// No fields (and no allocation).
    public init() {
        bytes = []
        offsets = []
    }

    public var count: Int { offsets.count / 4 }

    /// The bytes these fields' buffers hold allocated (what keeping them for reuse costs).
    public var allocatedBytes: Int { bytes.capacity + offsets.capacity * MemoryLayout<Int>.stride }

    // MARK: Building in place, without allocating once the buffers are big enough

    /// Adds a field at these offsets of the bytes ``setBytes(_:)`` gives next.
    @inline(__always)
    package mutating func append(name: Range<Int>, value: Range<Int>) {
        offsets.append(name.lowerBound)
        offsets.append(name.upperBound)
        offsets.append(value.lowerBound)
        offsets.append(value.upperBound)
    }

    /// Copies the bytes the fields' offsets point into, lower-casing the names (ASCII) in the copy.
    package mutating func setBytes(_ head: UnsafeRawBufferPointer) {
        // Only this package's parser builds fields, from ranges of the head it passes here: checked in debug builds.
        assert(Self.rangesFit(offsets, within: head.count), "a header field's range lies outside its bytes")
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: head)
        bytes.withUnsafeMutableBufferPointer { bytes in
            for field in stride(from: 0, to: offsets.count, by: 4) {
                for index in offsets[field]..<offsets[field + 1] where bytes[index] >= 0x41 && bytes[index] <= 0x5A {
                    bytes[index] |= 0x20
                }
            }
        }
    }

    /// Empties these fields and hands their buffers back, capacity kept, for the next head: once nothing else holds
    /// them, filling them again allocates nothing.
    public mutating func recycled() -> HeaderFields {
        var taken = HeaderFields()
        swap(&self, &taken)
        taken.bytes.removeAll(keepingCapacity: true)
        taken.offsets.removeAll(keepingCapacity: true)
        return taken
    }

    /// Every field as strings, in arrival order.
    public var strings: [(name: String, value: String)] {
        withFields { _, fields in fields.map { (name: string($0.name), value: string($0.value)) } }
    }

    /// The text at `range` of `bytes` (a range outside them traps).
    public func string(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    /// The first value of a field, by lower-case name.
    public func first(_ name: String) -> String? {
        var name = name
        return name.withUTF8 { name in
            withFields { bytes, fields in
                for field in fields where Self.equal(bytes, field.name, name) {
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[field.value]), as: UTF8.self)
                }
                return nil
            }
        }
    }

    /// Calls `body` with the bytes of `bytes` and the fields, in place.
    public func withFields<Result>(
        _ body: (_ bytes: UnsafeBufferPointer<UInt8>, _ fields: Fields) throws -> Result
    ) rethrows -> Result {
        try bytes.withUnsafeBufferPointer { bytes in
            try offsets.withUnsafeBufferPointer { try body(bytes, Fields(offsets: $0)) }
        }
    }

    /// Whether `bytes[range]` is exactly `other`.
    @inline(__always)
    public static func equal(
        _ bytes: UnsafeBufferPointer<UInt8>,
        _ range: Range<Int>,
        _ other: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        Bytes.equal(UnsafeBufferPointer(rebasing: bytes[range]), other)
    }
}

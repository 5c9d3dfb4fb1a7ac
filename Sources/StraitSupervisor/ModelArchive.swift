import CZlib
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Unpacks a `model.tar.gz` into a model directory, refusing what could escape it or fill the disk: absolute paths,
/// `..` components, links that leave the directory, entries written through a link, device files, and archives
/// whose content exceeds a size bound. Streams: the archive is never held in memory.
public struct ModelArchive: Sendable {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// The largest total size of the files in an archive.
    public let maximumBytes: Int64
    /// The most entries an archive may hold.
    public let maximumEntries: Int

    public init(maximumBytes: Int64, maximumEntries: Int = 100_000) {
        self.maximumBytes = maximumBytes
        self.maximumEntries = maximumEntries
    }

    /// Whether the file starts with gzip's magic bytes.
    public static func isGzip(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let magic = (try? handle.read(upToCount: 2)) ?? Data()
        return magic == Data([0x1F, 0x8B])
    }

    /// Unpacks the gzip-compressed tar file at `archive` into the existing, empty directory `directory`.
    public func extract(archive: String, into directory: String) throws(Failure) {
        guard let input = fopen(archive, "rb") else { throw Failure("Cannot open \(archive).") }
        defer { fclose(input) }
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure("Cannot initialise zlib.")
        }
        defer { inflateEnd(&stream) }
        var reader = TarReader(root: directory, maximumBytes: maximumBytes, maximumEntries: maximumEntries)
        defer { reader.closeOpenFile() }
        let chunk = 64 * 1024
        var compressed = [UInt8](repeating: 0, count: chunk)
        var plain = [UInt8](repeating: 0, count: 4 * chunk)
        // Every inflated byte counts, skipped entries too, so a gzip bomb of metadata ends early.
        let inflateLimit = maximumBytes.multipliedReportingOverflow(by: 2).overflow ? Int64.max : maximumBytes * 2
        var inflated: Int64 = 0
        var sawStreamEnd = false
        var finished = false
        reading: while !finished {
            let count = compressed.withUnsafeMutableBytes { fread($0.baseAddress, 1, chunk, input) }
            if count == 0 {
                guard ferror(input) == 0 else { throw Failure("Cannot read \(archive).") }
                break
            }
            var offset = 0
            while offset < count {
                var status: Int32 = Z_OK
                var produced = 0
                compressed.withUnsafeMutableBufferPointer { source in
                    plain.withUnsafeMutableBufferPointer { target in
                        stream.next_in = source.baseAddress! + offset
                        stream.avail_in = UInt32(count - offset)
                        stream.next_out = target.baseAddress
                        stream.avail_out = UInt32(target.count)
                        status = inflate(&stream, Z_NO_FLUSH)
                        produced = target.count - Int(stream.avail_out)
                        offset = count - Int(stream.avail_in)
                    }
                }
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw Failure("The archive is not valid gzip data (zlib error \(status)).")
                }
                let fed: Result<Void, Failure> = plain.withUnsafeBytes { bytes in
                    Result { () throws(Failure) in
                        try reader.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<produced]))
                    }
                }
                try fed.get()
                inflated += Int64(produced)
                guard inflated <= inflateLimit else {
                    throw Failure("The archive inflates to more than \(inflateLimit) bytes.")
                }
                if reader.isFinished {
                    finished = true
                    break reading  // whatever follows the tar's end is ignored
                }
                if status == Z_STREAM_END {
                    sawStreamEnd = true
                    // A concatenated gzip member may follow.
                    guard offset < count, inflateReset(&stream) == Z_OK else { break }
                }
                if status == Z_BUF_ERROR && produced == 0 { break }
            }
        }
        // Without the tar's end-of-archive blocks, the gzip stream must at least have ended (its CRC checked).
        guard reader.isFinished || (sawStreamEnd && reader.isAtEntryBoundary) else {
            throw Failure("The archive is truncated.")
        }
    }
}

/// A streaming ustar/GNU/pax reader that writes entries under `root`.
struct TarReader {
    let root: String
    let maximumBytes: Int64
    let maximumEntries: Int

    private var header = [UInt8]()
    private var remaining: Int64 = 0  // data bytes of the current entry still to come
    private var padding: Int64 = 0
    private var target: Target = .skip
    private var file: UnsafeMutablePointer<FILE>?
    private var written: Int64 = 0
    private var entries = 0
    private var zeroBlocks = 0
    private var longName: [UInt8]?
    private var longLink: [UInt8]?
    private var paxPath: String?
    private var paxLinkPath: String?
    private var paxSize: Int64?
    private var metadata = [UInt8]()
    private var links: Set<String> = []
    private(set) var isFinished = false

    private enum Target { case skip, file, longName, longLink, pax }

    init(root: String, maximumBytes: Int64, maximumEntries: Int) {
        self.root = root
        self.maximumBytes = maximumBytes
        self.maximumEntries = maximumEntries
    }

    var isAtEntryBoundary: Bool { remaining == 0 && padding == 0 && header.isEmpty && entries > 0 }

    /// Closes the file being written, ignoring errors: for failure paths.
    mutating func closeOpenFile() {
        if let file { fclose(file) }
        file = nil
    }

    /// Closes the file just written; a failed flush (a full disk) is an error, not a short model file.
    private mutating func finishFile() throws(ModelArchive.Failure) {
        guard let handle = file else { return }
        file = nil
        guard fclose(handle) == 0 else {
            throw ModelArchive.Failure("Cannot write the model directory: \(String(cString: strerror(errno))).")
        }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(ModelArchive.Failure) {
        var index = 0
        while index < bytes.count, !isFinished {
            if remaining > 0 {
                let take = Int(min(remaining, Int64(bytes.count - index)))
                try consumeData(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                remaining -= Int64(take)
                index += take
                if remaining == 0 { try finishEntry() }
            } else if padding > 0 {
                let take = Int(min(padding, Int64(bytes.count - index)))
                padding -= Int64(take)
                index += take
            } else {
                let take = min(512 - header.count, bytes.count - index)
                header.append(contentsOf: bytes[index..<index + take])
                index += take
                if header.count == 512 {
                    let block = header
                    header.removeAll(keepingCapacity: true)
                    try readHeader(block)
                }
            }
        }
    }

    private mutating func consumeData(_ bytes: UnsafeRawBufferPointer) throws(ModelArchive.Failure) {
        switch target {
        case .file:
            guard fwrite(bytes.baseAddress, 1, bytes.count, file) == bytes.count else {
                throw ModelArchive.Failure("Cannot write the model directory: \(String(cString: strerror(errno))).")
            }
        case .longName, .longLink, .pax:
            metadata.append(contentsOf: bytes)
        case .skip: break
        }
    }

    private mutating func finishEntry() throws(ModelArchive.Failure) {
        switch target {
        case .file: try finishFile()
        case .longName: longName = Array(metadata.prefix { $0 != 0 })
        case .longLink: longLink = Array(metadata.prefix { $0 != 0 })
        case .pax: try parsePax()
        case .skip: break
        }
        metadata.removeAll()
        target = .skip
    }

    private mutating func readHeader(_ block: [UInt8]) throws(ModelArchive.Failure) {
        if block.allSatisfy({ $0 == 0 }) {
            zeroBlocks += 1
            if zeroBlocks == 2 { isFinished = true }
            return
        }
        zeroBlocks = 0
        guard let checksum = Self.octal(block[148..<156]) else {
            throw ModelArchive.Failure("The archive is not a tar file.")
        }
        var sum: Int64 = 0
        for (offset, byte) in block.enumerated() { sum += Int64((148..<156).contains(offset) ? 0x20 : byte) }
        guard sum == checksum else {
            throw ModelArchive.Failure("The archive is not a tar file (bad header checksum).")
        }

        entries += 1
        guard entries <= maximumEntries else {
            throw ModelArchive.Failure("The archive holds more than \(maximumEntries) entries.")
        }
        guard let headerSize = Self.number(block[124..<136]), headerSize >= 0 else {
            throw ModelArchive.Failure("The archive has an entry with an invalid size.")
        }
        let size = paxSize ?? headerSize
        remaining = size
        padding = (512 - size % 512) % 512
        let type = block[156]
        switch type {
        case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"):
            guard size <= 1 << 20 else { throw ModelArchive.Failure("The archive has an oversized metadata entry.") }
            target = type == UInt8(ascii: "L") ? .longName : type == UInt8(ascii: "K") ? .longLink : .pax
            if remaining == 0 { try finishEntry() }
            return
        case UInt8(ascii: "g"):
            target = .skip
            if remaining == 0 { try finishEntry() }
            return
        default: break
        }

        let rawName = longName ?? Self.ustarName(block)
        guard rawName.count <= Self.maximumPathBytes, !rawName.contains(0),
            (longLink?.count ?? 0) <= Self.maximumPathBytes,
            !(paxPath ?? "").utf8.contains(0), !(paxLinkPath ?? "").utf8.contains(0),
            (paxPath?.utf8.count ?? 0) <= Self.maximumPathBytes, (paxLinkPath?.utf8.count ?? 0) <= Self.maximumPathBytes
        else {
            throw ModelArchive.Failure("The archive has an entry name that is too long or holds a NUL byte; refused.")
        }
        let rawLink = longLink ?? Array(block[157..<257].prefix { $0 != 0 })
        let name = paxPath ?? String(decoding: rawName, as: UTF8.self)
        let linkName = paxLinkPath ?? String(decoding: rawLink, as: UTF8.self)
        longName = nil
        longLink = nil
        paxPath = nil
        paxLinkPath = nil
        paxSize = nil

        guard let components = try safeComponents(name) else {
            target = .skip  // the archive's root directory itself
            if remaining == 0 { try finishEntry() }
            return
        }
        let relative = components.joined(separator: "/")
        guard !passesThroughLink(components) else {
            throw ModelArchive.Failure("The archive writes \(name) through a link; refused.")
        }
        let path = root + "/" + relative
        let mode = mode_t(Self.octal(block[100..<108]) ?? 0o644)
        switch type {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
            guard size <= maximumBytes - written else {
                throw ModelArchive.Failure(
                    "The archive's content exceeds the model data limit of \(maximumBytes) bytes."
                )
            }
            written += size
            try makeParents(components)
            unlink(path)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644 | (mode & 0o111))
            guard descriptor >= 0 else {
                throw ModelArchive.Failure("Cannot create \(relative): \(String(cString: strerror(errno))).")
            }
            guard let handle = fdopen(descriptor, "wb") else {
                close(descriptor)
                throw ModelArchive.Failure("Cannot create \(relative): \(String(cString: strerror(errno))).")
            }
            file = handle
            target = .file
        case UInt8(ascii: "5"):
            try makeParents(components + ["."])
            target = .skip
        case UInt8(ascii: "2"):
            guard !linkName.hasPrefix("/"), staysInside(linkName, from: Array(components.dropLast())) else {
                throw ModelArchive.Failure(
                    "The archive's link \(name) -> \(linkName) leaves the model directory; refused."
                )
            }
            try makeParents(components)
            unlink(path)
            guard symlink(linkName, path) == 0 else {
                throw ModelArchive.Failure("Cannot create the link \(relative): \(String(cString: strerror(errno))).")
            }
            links.insert(relative)
            target = .skip
        case UInt8(ascii: "1"):
            guard let linkComponents = try safeComponents(linkName), !passesThroughLink(linkComponents + ["."]) else {
                throw ModelArchive.Failure("The archive's hard link \(name) has no target inside the model directory.")
            }
            try makeParents(components)
            unlink(path)
            guard link(root + "/" + linkComponents.joined(separator: "/"), path) == 0 else {
                throw ModelArchive.Failure("Cannot create the hard link \(relative) -> \(linkName).")
            }
            target = .skip
        default:
            throw ModelArchive.Failure(
                "The archive's entry \(name) is a device, FIFO or other special file (type '\(UnicodeScalar(type))'); refused."
            )
        }
        if remaining == 0 { try finishEntry() }
    }

    /// Whether a parent directory of the path is a link this archive created. Linear in the path's length.
    private func passesThroughLink(_ components: [String]) -> Bool {
        guard !links.isEmpty, components.count > 1 else { return false }
        var prefix = ""
        for component in components.dropLast() {
            prefix += prefix.isEmpty ? component : "/" + component
            if links.contains(prefix) { return true }
        }
        return false
    }

    /// The entry's path as components, or nil for the root itself. Absolute paths and `..` are refused.
    private func safeComponents(_ name: String) throws(ModelArchive.Failure) -> [String]? {
        guard !name.hasPrefix("/") else {
            throw ModelArchive.Failure("The archive's entry \(name) has an absolute path; refused.")
        }
        let components = name.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !components.contains("..") else {
            throw ModelArchive.Failure("The archive's entry \(name) leaves the model directory (..); refused.")
        }
        return components.isEmpty ? nil : components
    }

    private func makeParents(_ components: [String]) throws(ModelArchive.Failure) {
        var path = root
        for component in components.dropLast() {
            path += "/" + component
            var status = stat()
            if lstat(path, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFDIR else {
                    throw ModelArchive.Failure(
                        "The archive puts an entry under \(component), which is not a directory."
                    )
                }
                continue
            }
            guard mkdir(path, 0o755) == 0 else {
                throw ModelArchive.Failure(
                    "Cannot create the directory \(component): \(String(cString: strerror(errno)))."
                )
            }
        }
    }

    /// Whether a relative link target, resolved from the link's directory, stays inside the root. The walk is by
    /// name, so it also refuses to pass through a link this archive made (where `..` would mean something else).
    func staysInside(_ target: String, from directory: [String]) -> Bool {
        var path = directory
        for component in target.split(separator: "/") where component != "." {
            if component == ".." {
                guard !path.isEmpty else { return false }
                path.removeLast()
            } else {
                path.append(String(component))
                if links.contains(path.joined(separator: "/")) { return false }
            }
        }
        return true
    }

    private mutating func parsePax() throws(ModelArchive.Failure) {
        var index = 0
        while index < metadata.count {
            var space = index
            while space < metadata.count, space - index < 20, metadata[space] != UInt8(ascii: " ") { space += 1 }
            // "<length> <key>=<value>\n", the length counting the whole record.
            guard space < metadata.count, let length = Int(String(decoding: metadata[index..<space], as: UTF8.self)),
                length > space - index + 1, length <= metadata.count - index,
                metadata[index + length - 1] == UInt8(ascii: "\n")
            else { throw ModelArchive.Failure("The archive has a malformed pax header.") }
            let record = String(decoding: metadata[(space + 1)..<(index + length - 1)], as: UTF8.self)
            if let equals = record.firstIndex(of: "=") {
                let key = record[..<equals]
                let value = String(record[record.index(after: equals)...])
                switch key {
                case "path": paxPath = value
                case "linkpath": paxLinkPath = value
                case "size":
                    guard let size = Int64(value), size >= 0 else {
                        throw ModelArchive.Failure("The archive has a malformed pax size.")
                    }
                    paxSize = size
                default: break
                }
            }
            index += length
        }
    }

    private static func ustarName(_ block: [UInt8]) -> [UInt8] {
        let name = Array(block[0..<100].prefix { $0 != 0 })
        guard block[257..<262].elementsEqual("ustar".utf8) else { return name }
        let prefix = Array(block[345..<500].prefix { $0 != 0 })
        return prefix.isEmpty ? name : prefix + [UInt8(ascii: "/")] + name
    }

    /// The longest entry or link name accepted (PATH_MAX).
    static let maximumPathBytes = 4096

    /// An octal header field (NUL or space terminated).
    static func octal(_ field: ArraySlice<UInt8>) -> Int64? {
        var value: Int64 = 0
        var sawDigit = false
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if sawDigit { break } else { continue }
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value < Int64.max >> 3 else { return nil }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
            sawDigit = true
        }
        return value
    }

    /// A size field: octal, or GNU base-256 when the high bit of the first byte is set.
    static func number(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first, first & 0x80 != 0 else { return octal(field) }
        var value: Int64 = Int64(first & 0x7F)
        for byte in field.dropFirst() {
            guard value < Int64.max >> 8 else { return nil }
            value = value << 8 | Int64(byte)
        }
        return value
    }
}

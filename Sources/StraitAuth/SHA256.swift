import CLibcrypto
public import Foundation

/// SHA-256 (FIPS 180-4) on libcrypto's low-level functions. The state is a plain C struct held inline: hashing
/// allocates nothing, and a state copies by value — which is how ``KeyedHMACSHA256`` reuses its hashed pad blocks.
struct SHA256Hasher {
    static let blockByteCount = 64

    private var context = SHA256_CTX()

    init() {
        SHA256_Init(&context)
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        SHA256_Update(&context, base, bytes.count)
    }

    /// The digest of everything passed to ``update(_:)``; the hasher is spent afterwards.
    mutating func finalize() -> SHA256Digest {
        var digest = SHA256Digest()
        withUnsafeMutableBytes(of: &digest.words) { out in
            _ = SHA256_Final(out.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
        }
        return digest
    }

    static func hash(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

/// A SHA-256 digest: 32 bytes, inline.
public struct SHA256Digest: Equatable, Sendable, ContiguousBytes {
    fileprivate var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: words, body)
    }

    public static func == (lhs: SHA256Digest, rhs: SHA256Digest) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }
}

extension Array where Element == UInt8 {
    /// The digest's 32 bytes.
    init(_ digest: SHA256Digest) {
        self = digest.withUnsafeBytes { Array($0) }
    }
}

/// HMAC-SHA256 (RFC 2104) under one key, with the key's inner and outer pad blocks already hashed: a message then
/// costs its own blocks and the two finalisations, on two hasher states copied by value.
struct KeyedHMACSHA256 {
    private let inner: SHA256Hasher
    private let outer: SHA256Hasher

    init(key: some ContiguousBytes) {
        var block = [UInt8](repeating: 0, count: SHA256Hasher.blockByteCount)
        key.withUnsafeBytes { bytes in
            if bytes.count > block.count {
                SHA256Hasher.hash(bytes).withUnsafeBytes { digest in
                    for (index, byte) in digest.enumerated() { block[index] = byte }
                }
            } else {
                for (index, byte) in bytes.enumerated() { block[index] = byte }
            }
        }
        var inner = SHA256Hasher()
        var outer = SHA256Hasher()
        block.map { $0 ^ 0x36 }.withUnsafeBytes { inner.update($0) }
        block.map { $0 ^ 0x5C }.withUnsafeBytes { outer.update($0) }
        self.inner = inner
        self.outer = outer
    }

    func authenticationCode(for message: UnsafeRawBufferPointer) -> SHA256Digest {
        var inner = self.inner
        inner.update(message)
        var outer = self.outer
        inner.finalize().withUnsafeBytes { outer.update($0) }
        return outer.finalize()
    }

    func authenticationCode(for message: [UInt8]) -> SHA256Digest {
        message.withUnsafeBytes { authenticationCode(for: $0) }
    }
}

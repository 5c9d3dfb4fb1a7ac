import Testing

@testable import StraitAuth

@Suite struct HexComparisonTests {
    @Test func everyByteAgainstItsLowercaseHex() {
        let bytes = (0...255).map(UInt8.init)
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        bytes.withUnsafeBytes { raw in
            func equal(_ text: String) -> Bool { SigV4Verifier.constantTimeHexEqual(raw, Array(text.utf8)[...]) }
            #expect(equal(hex))
            #expect(!equal(hex.uppercased()))
            #expect(!equal(String(hex.dropLast())))
            #expect(!equal(String(hex.dropLast()) + "0"))
            #expect(!equal(""))
            // As the verifier passes it: a slice in the middle of a longer header.
            let header = Array(("Signature=" + hex + ", more").utf8)
            #expect(SigV4Verifier.constantTimeHexEqual(raw, header[10..<(10 + hex.utf8.count)]))
            #expect(!SigV4Verifier.constantTimeHexEqual(raw, header[10...]))
        }
    }
}

/// Known answers: FIPS 180-4's examples and RFC 4231's HMAC-SHA256 test cases.
@Suite struct SHA256Tests {
    func hex(_ digest: SHA256Digest) -> String { digest.withUnsafeBytes { SigV4.hex($0) } }

    func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ])
    func knownDigests(_ message: String, _ expected: String) {
        #expect(Array(message.utf8).withUnsafeBytes { hex(SHA256Hasher.hash($0)) } == expected)
    }

    @Test func millionAsInPieces() {
        // FIPS 180-4's long example, fed in uneven pieces across block boundaries.
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        var hasher = SHA256Hasher()
        var fed = 0
        var size = 1
        while fed < 1_000_000 {
            let count = min(size, 1_000_000 - fed, piece.count)
            piece.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            fed += count
            size = size % 997 + 63
        }
        #expect(hex(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// RFC 4231's cases 1–4, 6 and 7, and three more computed with Python's hmac module: a key of exactly one block
    /// (used as it is) with an empty message, an empty key, a key one byte longer than the block.
    static let hmacCases: [(keyHex: String, message: [UInt8], expected: String)] = [
        (
            String(repeating: "0b", count: 20), Array("Hi There".utf8),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        ),
        (
            "4a656665", Array("what do ya want for nothing?".utf8),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ),
        (
            String(repeating: "aa", count: 20), [UInt8](repeating: 0xDD, count: 50),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        ),
        (
            "0102030405060708090a0b0c0d0e0f10111213141516171819", [UInt8](repeating: 0xCD, count: 50),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        ),
        (
            String(repeating: "0b", count: 64), [],
            "75c2e15a41527bb3a793d864734d4e49cb8dc405cdf2b2ff6a44169afa1c5dee"
        ),
        ("", Array("abc".utf8), "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351"),
        (
            keyOf65Bytes,
            Array(repeating: UInt8(ascii: "x"), count: 64),
            "8f25dd0369e938dc79512cee2fc3b43f51af3a40b9458f6f7ff8f1570a6d5480"
        ),
        // A key longer than the block is hashed first.
        (
            String(repeating: "aa", count: 131),
            Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        ),
        (
            String(repeating: "aa", count: 131),
            Array(
                "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."
                    .utf8
            ),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        ),
    ]

    /// The bytes 0x00 … 0x40 in hex.
    static let keyOf65Bytes = (0..<65).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()

    @Test(arguments: hmacCases)
    func knownHMACs(keyHex: String, message: [UInt8], expected: String) {
        let keyed = KeyedHMACSHA256(key: bytes(hex: keyHex))
        #expect(hex(keyed.authenticationCode(for: message)) == expected)
        // The kept pad states are copied per message, not used up: the same key answers again, alike.
        #expect(hex(keyed.authenticationCode(for: message)) == expected)
    }
}

@Suite struct CanonicalHeaderValueTests {
    /// The rule, written the plain way: trim, then fold every run of spaces and tabs into one space.
    func folded(_ value: String) -> String {
        var words: [Substring] = []
        for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) { words.append(word) }
        return words.joined(separator: " ")
    }

    @Test(arguments: [
        "", " ", "\t", "a", " a ", "text/csv", "  text/csv\t", "a b", "a  b", "a\tb", "a \t b", "a b  c\t\td ",
        "\t\tleading", "trailing \t", "x-amz-date 20261130T000000Z", "é  ü", "a\u{0B}b",
    ])
    func foldsAsTheRuleSays(_ value: String) {
        var out: [UInt8] = Array("name:".utf8)
        SigV4.appendCanonicalHeaderValue(value, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "name:" + folded(value))
    }
}

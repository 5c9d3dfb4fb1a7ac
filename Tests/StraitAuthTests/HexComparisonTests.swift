import Crypto
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

@Suite struct KeyedHMACTests {
    @Test(arguments: [0, 1, 32, 63, 64, 65, 200])
    func matchesSwiftCryptosHMAC(keyLength: Int) {
        let key = SymmetricKey(data: (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
        let keyed = KeyedHMACSHA256(key: key)
        for message in [
            "", "a", String(repeating: "x", count: 55), String(repeating: "y", count: 64),
            String(repeating: "z", count: 1000),
        ].map({ Array($0.utf8) }) {
            let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
            let actual = message.withUnsafeBytes { Array(keyed.authenticationCode(for: $0)) }
            #expect(actual == expected)
        }
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

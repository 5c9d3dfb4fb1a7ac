import Crypto
import Testing

@testable import StraitAuth

@Suite struct HexComparisonTests {
    @Test func everyByteAgainstItsLowercaseHex() {
        let bytes = (0...255).map(UInt8.init)
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        bytes.withUnsafeBytes { raw in
            #expect(SigV4Verifier.constantTimeHexEqual(raw, hex))
            #expect(!SigV4Verifier.constantTimeHexEqual(raw, hex.uppercased()))
            #expect(!SigV4Verifier.constantTimeHexEqual(raw, String(hex.dropLast())))
            #expect(!SigV4Verifier.constantTimeHexEqual(raw, String(hex.dropLast()) + "0"))
            #expect(!SigV4Verifier.constantTimeHexEqual(raw, ""))
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

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

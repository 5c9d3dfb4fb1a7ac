import StraitCore
import Testing

@Suite struct SameBytesTests {
    @Test func comparesBytesNotCanonicalEquivalence() {
        #expect("connection".sameBytes(as: "connection"))
        #expect("".sameBytes(as: ""))
        #expect(!"connection".sameBytes(as: "Connection"))
        #expect(!"connection".sameBytes(as: "connectio"))
        #expect(!"content-length".sameBytes(as: "content-lengtx"))
        // Canonically equivalent (so `==` holds) but different bytes: precomposed é against e + combining acute.
        #expect("caf\u{E9}" == "cafe\u{301}")
        #expect(!"caf\u{E9}".sameBytes(as: "cafe\u{301}"))
        // Long (heap) strings as well as small ones.
        let long = String(repeating: "x-amzn-sagemaker-", count: 4)
        #expect(long.sameBytes(as: String(repeating: "x-amzn-sagemaker-", count: 4)))
        #expect(!long.sameBytes(as: long + "a"))
    }
}

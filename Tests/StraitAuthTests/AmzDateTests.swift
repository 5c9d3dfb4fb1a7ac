import Foundation
import StraitAuth
import Testing

/// `yyyyMMdd'T'HHmmss'Z'`, the X-Amz-Date format.
@Suite struct AmzDateTests {
    @Test(arguments: ["20150830T123600Z", "19700101T000000Z", "20000229T235959Z", "99991231T235959Z"])
    func roundTripsText(_ text: String) throws {
        let date = try #require(SigV4Verifier.parseAmzDate(text))
        #expect(SigV4Verifier.formatAmzDate(date) == text)
    }

    @Test func parsesToTheInstant() throws {
        let date = try #require(SigV4Verifier.parseAmzDate("20150830T123600Z"))
        #expect(date == Date(timeIntervalSince1970: 1_440_938_160))
        #expect(SigV4Verifier.formatAmzDate(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
    }

    @Test(arguments: [0, 1, 1_440_938_160, 1_700_000_000, 4_102_444_799])
    func roundTripsDates(_ seconds: Int) throws {
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        #expect(SigV4Verifier.parseAmzDate(SigV4Verifier.formatAmzDate(date)) == date)
    }

    @Test(arguments: [
        "", "20150830T123600", "20150830T1236000Z", "2015083T123600Z", "20150830 123600Z", "20150830T123600z",
        "20151330T123600Z", "20150030T123600Z", "20150800T123600Z", "20150832T123600Z", "20150830T243600Z",
        "20150830T126000Z", "2015O830T123600Z", "20150830TAB3600Z", "abcdefghTijklmnZ", "2015-08-30T12:36Z",
        "+0150830T123600Z", "-0150830T123600Z", "２0150830T123600Z",
    ])
    func rejects(_ text: String) {
        #expect(SigV4Verifier.parseAmzDate(text) == nil)
    }
}

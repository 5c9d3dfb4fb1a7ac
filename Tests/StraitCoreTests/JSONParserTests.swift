import Foundation
import StraitCore
import Testing

@Suite("JSONParser")
struct JSONParserTests {
    // MARK: Valid documents

    @Test(
        "numbers",
        arguments: [
            ("0", 0.0), ("-0", -0.0), ("7", 7), ("42", 42), ("-17", -17), ("3.25", 3.25), ("-0.5", -0.5),
            ("1e3", 1000), ("1E3", 1000), ("1e+3", 1000), ("2.5e-3", 0.0025), ("-1.5E2", -150), ("0e0", 0),
            ("10.0", 10), ("123456789012", 123_456_789_012), ("1.7976931348623157e308", .greatestFiniteMagnitude),
            ("5e-324", .leastNonzeroMagnitude),
        ] as [(String, Double)]
    )
    func numbers(text: String, expected: Double) throws {
        #expect(try JSONParser.parse(text) == .number(expected))
    }

    @Test(
        "strings and escapes",
        arguments: [
            (#""""#, ""),
            (#""plain""#, "plain"),
            (#""q\"b\\s\/f\bF\fN\nR\rT\t""#, "q\"b\\s/f\u{08}F\u{0C}N\nR\rT\t"),
            (#""\u0041\u00e9\u4E2D\u0000""#, "Aé中\u{0}"),
            (#""\ud83d\ude00 \uD834\uDD1E""#, "😀 𝄞"),
            (#""x\ud83d\ude00y""#, "x😀y"),
            ("\"raw é 中 😀\"", "raw é 中 😀"),
            ("\"\u{7F}\"", "\u{7F}"),
        ] as [(String, String)]
    )
    func strings(text: String, expected: String) throws {
        #expect(try JSONParser.parse(text) == .string(expected))
    }

    @Test("literals")
    func literals() throws {
        #expect(try JSONParser.parse("true") == .bool(true))
        #expect(try JSONParser.parse("false") == .bool(false))
        #expect(try JSONParser.parse("null") == .null)
    }

    @Test("nested arrays and objects, with whitespace anywhere between tokens")
    func nested() throws {
        let text =
            " \t\r\n{ \"a\" : [ 1 , [ ] , { } , [ true , null ] ] ,\n\"b\":{\"c\":{\"d\":\"e\"}} , \"\" : -1 }\n "
        let expected = JSONValue.object([
            "a": .array([.number(1), .array([]), .object([:]), .array([.bool(true), .null])]),
            "b": .object(["c": .object(["d": .string("e")])]),
            "": .number(-1),
        ])
        #expect(try JSONParser.parse(text) == expected)
        #expect(try JSONParser.parse(Array(text.utf8)) == expected)
    }

    @Test("a repeated member name keeps the last value")
    func duplicateKeys() throws {
        #expect(try JSONParser.parse(#"{"a":1,"a":2}"#) == .object(["a": .number(2)]))
    }

    @Test("nesting up to maximumDepth is accepted, one more level is refused")
    func depthBound() throws {
        let depth = JSONParser.maximumDepth
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try JSONParser.parse(arrays)
        for _ in 1..<depth { value = try #require(value.arrayValue?.first) }
        #expect(value == .array([]))

        let objects = String(repeating: #"{"k":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
        _ = try JSONParser.parse(objects)

        let tooDeep = "[" + arrays + "]"
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(tooDeep) }
        let tooDeepObjects = #"{"k":"# + objects + "}"
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(tooDeepObjects) }
    }

    // MARK: Serialization

    @Test(
        "serialized() writes compact JSON with sorted keys and integers without a fraction",
        arguments: [
            (JSONValue.null, "null"),
            (.bool(true), "true"),
            (.number(3), "3"),
            (.number(-0.0), "0"),
            (.number(-42), "-42"),
            (.number(1e14), "100000000000000"),
            (.number(0.5), "0.5"),
            (.number(-2.25), "-2.25"),
            (.number(.nan), "null"),
            (.number(.infinity), "null"),
            (.string(""), #""""#),
            (.string("a\"b\\c/é😀"), #""a\"b\\c/é😀""#),
            (.string("\n\r\t\u{0}\u{1}\u{08}\u{0C}\u{1F} \u{7F}"), #""\n\r\t\u0000\u0001\u0008\u000c\u001f \#u{7F}""#),
            (.array([]), "[]"),
            (.object([:]), "{}"),
            (.array([.number(1), .string("x"), .null, .array([.bool(false)])]), #"[1,"x",null,[false]]"#),
            (
                .object(["b": .number(1), "a": .object(["z": .null, "y": .array([])]), "B": .string("up")]),
                #"{"B":"up","a":{"y":[],"z":null},"b":1}"#
            ),
        ] as [(JSONValue, String)]
    )
    func serialized(value: JSONValue, expected: String) {
        #expect(value.serialized() == expected)
    }

    @Test(
        "parse(serialized()) gives back the same value",
        arguments: [
            JSONValue.null, .bool(false), .number(0), .number(-1), .number(1e20), .number(0.1), .number(-1.5e-7),
            .number(123_456.789), .number(.greatestFiniteMagnitude), .number(.leastNonzeroMagnitude),
            .string("control \u{0}\u{1}\u{1F} quote \" backslash \\ slash / é 😀 \u{2028}"),
            .array([.number(1), .array([.array([])]), .object(["k": .string("v")])]),
            .object(["z": .number(1), "a": .array([.bool(true), .null]), "": .object([:]), "é": .string("\t")]),
        ]
    )
    func roundTrip(value: JSONValue) throws {
        #expect(try JSONParser.parse(value.serialized()) == value)
    }

    @Test("a parsed document serializes to its canonical form")
    func canonicalForm() throws {
        let text = #" { "b" : [ 1.0 , 2e2 , -0 ] , "a" : "\u00e9\ud83d\ude00\n" } "#
        #expect(try JSONParser.parse(text).serialized() == #"{"a":"é😀\n","b":[1,200,0]}"#)
    }

    // MARK: Bad input

    /// One malformed document, by a readable name.
    struct BadInput: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        init(_ name: String, _ text: String) {
            self.name = name
            self.bytes = Array(text.utf8)
        }
        init(_ name: String, bytes: [UInt8]) {
            self.name = name
            self.bytes = bytes
        }
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput("empty input", ""),
        BadInput("whitespace only", " \n\t "),
        BadInput("truncated array", "[1, 2"),
        BadInput("truncated array after comma", "[1,"),
        BadInput("truncated object", #"{"a": 1"#),
        BadInput("truncated object after name", #"{"a""#),
        BadInput("truncated object after colon", #"{"a":"#),
        BadInput("truncated literal", "tru"),
        BadInput("truncated number exponent", "1e"),
        BadInput("truncated exponent sign", "1e+"),
        BadInput("unterminated string", #""abc"#),
        BadInput("unterminated escape", #""\"#),
        BadInput("short unicode escape", #""\u12""#),
        BadInput("unicode escape cut off", #""\u12"#),
        BadInput("non-hex unicode escape", #""\uZZZZ""#),
        BadInput("unknown escape", #""\x""#),
        BadInput("trailing garbage", "[1] x"),
        BadInput("two documents", "{} {}"),
        BadInput("trailing comma in array", "[1,]"),
        BadInput("trailing comma in object", #"{"a":1,}"#),
        BadInput("missing comma", "[1 2]"),
        BadInput("missing colon", #"{"a" 1}"#),
        BadInput("unquoted member name", "{a:1}"),
        BadInput("number as member name", "{1:2}"),
        BadInput("single quotes", "'a'"),
        BadInput("capitalised literal", "True"),
        BadInput("leading zero", "01"),
        BadInput("negative leading zero", "-01"),
        BadInput("bare minus", "-"),
        BadInput("minus then space", "- 1"),
        BadInput("trailing dot", "1."),
        BadInput("dot then exponent", "1.e5"),
        BadInput("leading dot", ".5"),
        BadInput("leading plus", "+1"),
        BadInput("hex number", "0x10"),
        BadInput("lone high surrogate", #""\ud800""#),
        BadInput("lone high surrogate at end", #""\ud800"#),
        BadInput("high surrogate then other escape", #""\ud800\n""#),
        BadInput("high surrogate then non-surrogate", #""\ud800\u0041""#),
        BadInput("two high surrogates", #""\ud800\ud800""#),
        BadInput("lone low surrogate", #""\udc00""#),
        BadInput("invalid UTF-8 byte", bytes: [0xFF]),
        BadInput("invalid UTF-8 in string", bytes: [0x22, 0xFF, 0x22]),
        BadInput("truncated UTF-8 sequence in string", bytes: [0x22, 0xC3, 0x22]),
        BadInput("UTF-8 encoded surrogate in string", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22]),
        BadInput("overlong UTF-8 in string", bytes: [0x22, 0xC0, 0xAF, 0x22]),
        BadInput("raw newline in string", "\"a\nb\""),
        BadInput("raw tab in string", "\"\t\""),
        BadInput("NUL in string", bytes: [0x22, 0x00, 0x22]),
        BadInput("NUL after document", bytes: [0x31, 0x00]),
        BadInput(
            "arrays nested deeper than maximumDepth",
            String(repeating: "[", count: JSONParser.maximumDepth + 1)
                + String(repeating: "]", count: JSONParser.maximumDepth + 1)
        ),
        BadInput("100000 unclosed arrays", String(repeating: "[", count: 100_000)),
        BadInput("100000 unclosed objects", String(repeating: #"{"a":"#, count: 100_000)),
        BadInput("NaN", "NaN"),
        BadInput("Infinity", "Infinity"),
        BadInput("-Infinity", "-Infinity"),
        BadInput("NaN in array", "[NaN]"),
        BadInput("number out of range", "1e999"),
        BadInput("negative number out of range", "-1e999"),
    ]

    @Test("malformed input throws JSONParser.Failure", arguments: badInputs)
    func badInput(input: BadInput) {
        let failure = #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(input.bytes) }
        if let failure {
            #expect(!failure.message.isEmpty)
            #expect((0...input.bytes.count).contains(failure.offset), "offset \(failure.offset) is outside the input")
        }
    }

    @Test(
        "failures report where parsing stopped",
        arguments: [
            ("[1] x", 4), ("01", 1), ("1.", 2), ("-", 1), ("", 0), (#"{"a" 1}"#, 5), ("1e999", 5),
        ] as [(String, Int)]
    )
    func failureOffset(text: String, offset: Int) {
        let failure = #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
        #expect(failure?.offset == offset)
    }
}

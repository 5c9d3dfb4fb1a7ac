import Foundation
import NIOCore
import StraitTestSupport
import Testing

@testable import StraitSupervisor

/// One tar header block (ustar) with a correct checksum.
private func header(_ name: String, type: Character = "0", size: Int = 0, link: String = "") -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, at offset: Int) {
        for (index, byte) in text.utf8.enumerated() { block[offset + index] = byte }
    }
    put(name, at: 0)
    put("0000644", at: 100)
    put(String(format: "%011o", size), at: 124)
    put("00000000000", at: 136)
    block[156] = UInt8(ascii: type.unicodeScalars.first!)
    put(link, at: 157)
    put("ustar", at: 257)
    put("00", at: 263)
    put("        ", at: 148)
    let sum = block.reduce(0) { $0 + Int($1) }
    put(String(format: "%06o", sum) + "\0 ", at: 148)
    return block
}

private func entry(_ name: String, _ data: [UInt8] = [], type: Character = "0", link: String = "") -> [UInt8] {
    var bytes = header(name, type: type, size: data.count, link: link) + data
    bytes += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    return bytes
}

private let end = [UInt8](repeating: 0, count: 1024)

/// Writes `tar` gzip-compressed (by the system's gzip) and extracts it into a fresh directory.
private func extract(
    _ tar: [UInt8],
    limit: Int64 = 1 << 20,
    compress: Bool = true
) throws -> (String, TemporaryDirectory) {
    let directory = try TemporaryDirectory()
    let plain = directory.path("archive.tar")
    FileManager.default.createFile(atPath: plain, contents: Data(tar))
    var archive = plain
    if compress {
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-n", plain]
        try gzip.run()
        gzip.waitUntilExit()
        archive = plain + ".gz"
    }
    let target = directory.path("model")
    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
    try ModelArchive(maximumBytes: limit).extract(archive: archive, into: target)
    return (target, directory)
}

private func failure(_ tar: [UInt8], limit: Int64 = 1 << 20, compress: Bool = true) -> String? {
    do {
        let (_, directory) = try extract(tar, limit: limit, compress: compress)
        directory.remove()
        return nil
    } catch let error as ModelArchive.Failure {
        return error.message
    } catch {
        return "\(error)"
    }
}

@Suite struct ModelArchiveTests {
    @Test func extractsFilesDirectoriesLongNamesPaxAndInnerLinks() throws {
        let longName = String(repeating: "n", count: 150)
        let pax = "31 path=pax/renamed-by-pax.bin\n"
        var tar =
            entry("./", type: "5") + entry("code/", type: "5") + entry("code/inference.py", Array("print(1)".utf8))
        tar += entry("././@LongLink", Array((longName + "\0").utf8), type: "L") + entry("short", Array("long".utf8))
        tar += entry("PaxHeader", Array(pax.utf8), type: "x") + entry("ignored-name", [1, 2, 3])
        tar += entry("xgboost-model", Array("{}".utf8)) + entry("alias", type: "2", link: "xgboost-model")
        tar += entry("code/hard", type: "1", link: "xgboost-model") + end
        let (root, directory) = try extract(tar)
        defer { directory.remove() }
        func read(_ path: String) -> String? {
            FileManager.default.contents(atPath: root + "/" + path).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(read("code/inference.py") == "print(1)")
        #expect(read(longName) == "long")
        #expect(read("pax/renamed-by-pax.bin") == "\u{1}\u{2}\u{3}")
        #expect(read("alias") == "{}")
        #expect(read("code/hard") == "{}")
        #expect(!FileManager.default.fileExists(atPath: root + "/ignored-name"))
    }

    /// Archives that must be refused, with a part of the reason.
    static let hostile: [(tar: [UInt8], reason: String)] = {
        var cases: [(tar: [UInt8], reason: String)] = []
        cases.append((entry("../up", [1]), "(..)"))
        cases.append((entry("/abs", [1]), "absolute path"))
        cases.append((entry("a/../../up", [1]), "(..)"))
        cases.append((entry("out", type: "2", link: "../x"), "leaves the model directory"))
        cases.append((entry("out", type: "2", link: "/etc/passwd"), "leaves the model directory"))
        cases.append((entry("d", type: "2", link: "sub") + entry("d/file", [1]), "through a link"))
        cases.append((entry("h", type: "1", link: "../x"), "(..)"))
        cases.append((entry("dev", type: "3"), "special file"))
        cases.append((entry("big", [UInt8](repeating: 7, count: 3000)), "exceeds the model data limit"))
        cases.append((entry("x", Array("bad pax".utf8), type: "x"), "malformed pax"))
        // Found by review: a chain of inner links that climbs out, overflowing sizes, short pax records, NULs,
        // names long enough to make a quadratic check hang.
        cases.append(
            (entry("b", type: "2", link: ".") + entry("up", type: "2", link: "b/.."), "leaves the model directory")
        )
        cases.append(
            (
                entry("a", [1]) + entry("p", Array("28 size=9223372036854775807\n".utf8), type: "x") + header("b"),
                "exceeds"
            )
        )
        cases.append((entry("p", Array("2 ".utf8), type: "x"), "malformed pax"))
        cases.append((entry("p", Array("6 a=b\n9223372036854775807 x".utf8), type: "x"), "malformed pax"))
        cases.append(
            (entry("p", Array("19 linkpath=..\0x/y\n".utf8), type: "x") + entry("l", type: "2", link: "x"), "NUL byte")
        )
        cases.append(
            (
                entry("././@LongLink", Array((String(repeating: "a/", count: 3000) + "f\0").utf8), type: "L")
                    + entry("f", [1]), "too long"
            )
        )
        return cases
    }()

    @Test(arguments: Self.hostile)
    func refusesWhatCouldEscapeOrOverflow(_ tar: [UInt8], _ message: String) {
        let reason = failure(tar + end, limit: 2048)
        #expect(reason?.contains(message) == true, "\(reason ?? "extracted")")
    }

    @Test func badBytesAreErrors() {
        var corrupt = entry("file", [1, 2, 3])
        corrupt[0] ^= 0xFF  // checksum no longer matches
        #expect(failure(corrupt + end)?.contains("bad header checksum") == true)
        #expect(failure(Array("hello, not a tar archive at all".utf8))?.contains("truncated") == true)
        #expect(
            failure(Array(entry("file", [UInt8](repeating: 1, count: 2000)).prefix(900)))?.contains("truncated") == true
        )
        var hugeSize = header("file", size: 0)
        hugeSize.replaceSubrange(124..<136, with: Array("77777777777\0".utf8))
        let sum = hugeSize.enumerated().reduce(0) { $0 + Int((148..<156).contains($1.offset) ? 0x20 : $1.element) }
        hugeSize.replaceSubrange(148..<156, with: Array((String(format: "%06o", sum) + "\0 ").utf8))
        #expect(failure(hugeSize + end)?.contains("exceeds") == true)
        // Not gzip at all, but named like it: zlib refuses it.
        #expect(
            failure([0x1F, 0x8B] + [UInt8](repeating: 0x41, count: 100), compress: false)?.contains("gzip") == true
        )
    }
}

@Suite struct ListBucketResultTests {
    @Test func keysTokensAndEntities() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>m/a &amp; b.txt</Key></Contents><Contents><Key>m/&#233;t&#xE9;</Key></Contents>\
            <NextContinuationToken>tok&lt;1&gt;</NextContinuationToken></ListBucketResult>
            """
        let listing = ListBucketResult(xml: xml)
        #expect(listing.keys == ["m/a & b.txt", "m/été"])
        #expect(listing.isTruncated)
        #expect(listing.nextToken == "tok<1>")
        #expect(ListBucketResult.decodeEntities("a &bogus; &#xFFFFFFFF; & b") == "a &bogus; &#xFFFFFFFF; & b")
    }
}

@Suite struct ContainerBackendTests {
    @Test func imagesGoToTheEngineOnlyWhenOneIsConfigured() throws {
        let withEngine = ImageResolver(workerExecutable: "/opt/strait", dockerSocket: "/run/docker.sock")
        let resolved = try withEngine.resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:3").get()
        #expect(resolved.containerImage == "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:3")
        // Built-ins and local executables keep the process backend.
        #expect(try withEngine.resolve("strait/echo").get().containerImage == nil)
        #expect(throws: ImageResolver.Failure.self) { try withEngine.resolve("/nonexistent/serve").get() }
        let without = ImageResolver(workerExecutable: "/opt/strait")
        guard case .failure(let failure) = without.resolve("example.com/model:1") else {
            Issue.record("an image resolved without an engine")
            return
        }
        #expect(failure.reason.contains("--docker-host"))
    }

    @Test func pullStreamsAndReferences() {
        // dockerd ends stream lines with \r\n; the error may come after progress lines.
        let stream = Array(
            "{\"status\":\"Pulling fs layer\"}\r\n{\"status\":\"Downloading\"}\r\n{\"errorDetail\":{\"message\":\"no space left\"},\"error\":\"no space left\"}\r\n"
                .utf8
        )
        #expect(ContainerInstance.pullError(stream) == "no space left")
        #expect(ContainerInstance.pullError(Array("{\"status\":\"Downloaded\"}\r\n".utf8)) == nil)
        #expect(ContainerInstance.pullReference("repo/model:1") == ("repo/model", "1"))
        #expect(ContainerInstance.pullReference("localhost:5000/model") == ("localhost:5000/model", "latest"))
        #expect(
            ContainerInstance.pullReference("acct.dkr.ecr.us-east-1.amazonaws.com/m:2@sha256:abc") == (
                "acct.dkr.ecr.us-east-1.amazonaws.com/m", "sha256:abc"
            )
        )
        #expect(ContainerInstance.isContainerID("0123456789abcdef"))
        #expect(!ContainerInstance.isContainerID("../../x"))
    }

    @Test func resourcesFromTheInstanceTypeFitTheMachine() {
        let large = InstanceResources.forInstanceType("ml.m5.4xlarge")
        #expect(large.nanoCPUs == Int64(min(16, ProcessInfo.processInfo.activeProcessorCount)) * 1_000_000_000)
        #expect(large.memoryBytes <= Int64(ProcessInfo.processInfo.physicalMemory) / 2)
        #expect(InstanceResources.forInstanceType("ml.c5.large").memoryBytes <= 4 << 30)
        #expect(InstanceResources.forInstanceType(nil).nanoCPUs >= 1_000_000_000)
    }

    @Test func logFramesSplitAcrossChunks() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path("i-1.log")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let demultiplexer = LogDemultiplexer(descriptor: descriptor)
        var stream: [UInt8] = []
        for (kind, text) in [(UInt8(1), "out line\n"), (UInt8(2), "err line\n")] {
            let payload = Array(text.utf8)
            stream += [kind, 0, 0, 0, 0, 0, 0, UInt8(payload.count)] + payload
        }
        for split in [1, 3, 9, 13] {
            demultiplexer.feed(ByteBuffer(bytes: stream.prefix(split)))
            demultiplexer.feed(ByteBuffer(bytes: stream.dropFirst(split)))
        }
        close(descriptor)
        let written = String(decoding: try #require(FileManager.default.contents(atPath: path)), as: UTF8.self)
        #expect(written == String(repeating: "out line\nerr line\n", count: 4))
    }
}

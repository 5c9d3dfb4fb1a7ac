import Foundation
import StraitAuth
import StraitTestSupport
import Testing

@Suite struct CredentialsFileTests {
    @Test func createsAKeyPairOnFirstStartWithMode0600() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("credentials")
            let (credentials, created) = try CredentialsFile.loadOrCreate(path: path)
            #expect(created)
            #expect(credentials.accessKeyID.hasPrefix("AKIA"))
            #expect(credentials.accessKeyID.count == 20)
            #expect(credentials.accessKeyID.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) })
            #expect(credentials.secretAccessKey.count == 40)

            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            let permissions = try #require(attributes[.posixPermissions] as? NSNumber)
            #expect(permissions.intValue & 0o777 == 0o600)
            #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))

            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains("[default]"))
            #expect(text.contains("aws_access_key_id = \(credentials.accessKeyID)"))
            #expect(text.contains("aws_secret_access_key = \(credentials.secretAccessKey)"))
        }
    }

    @Test func secondStartLoadsTheSameKeys() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("credentials")
            let (first, firstCreated) = try CredentialsFile.loadOrCreate(path: path)
            let (second, secondCreated) = try CredentialsFile.loadOrCreate(path: path)
            #expect(firstCreated)
            #expect(!secondCreated)
            #expect(second == first)
            #expect(try CredentialsFile.load(path: path) == first)
        }
    }

    @Test func generatedKeysDiffer() {
        let a = Credentials.generate()
        let b = Credentials.generate()
        #expect(a.accessKeyID != b.accessKeyID)
        #expect(a.secretAccessKey != b.secretAccessKey)
    }

    @Test(arguments: [
        "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = secret\n",
        "aws_access_key_id = AKIANOSECTION\naws_secret_access_key = secret\n",
        "[default]\naws_access_key_id = AKIAONLYID\n",
        "[default]\naws_secret_access_key = only-secret\n",
        "[default]\naws_access_key_id =\naws_secret_access_key = secret\n",
        "",
        "# nothing but a comment\n",
    ])
    func loadWithoutACompleteDefaultProfileThrows(_ text: String) throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("credentials")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: CredentialsFile.Failure.self) { try CredentialsFile.load(path: path) }
            // loadOrCreate must not overwrite a file it cannot read.
            #expect(throws: CredentialsFile.Failure.self) { try CredentialsFile.loadOrCreate(path: path) }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
        }
    }

    @Test func loadOfAMissingFileThrows() throws {
        let missing = try withTemporaryDirectory { $0.path("absent") }
        #expect(throws: CredentialsFile.Failure.self) { try CredentialsFile.load(path: missing) }
    }

    @Test func readsTheDefaultProfileAmongOthersAndComments() throws {
        let text = """
            # Strait credentials
            [dev]
            aws_access_key_id = AKIADEVDEVDEVDEVDEV1
            aws_secret_access_key = dev-secret

            ; the one Strait uses
            [ default ]
              aws_access_key_id=AKIAIOSFODNN7EXAMPLE
            aws_secret_access_key =   wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY   
            region = us-east-1
            # aws_secret_access_key = commented-out

            [prod]
            aws_access_key_id = AKIAPRODPRODPRODPROD
            aws_secret_access_key = prod-secret
            """
        try withTemporaryDirectory { directory in
            let path = directory.path("credentials")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let expected = Credentials(
                accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
            )
            #expect(try CredentialsFile.load(path: path) == expected)
            let (loaded, created) = try CredentialsFile.loadOrCreate(path: path)
            #expect(loaded == expected)
            #expect(!created)
        }
    }

    @Test func readsCRLFLineEndings() throws {
        try withTemporaryDirectory { directory in
            let path = directory.path("credentials")
            try "[default]\r\naws_access_key_id = AKIACRLF\r\naws_secret_access_key = crlf-secret\r\n".write(
                toFile: path,
                atomically: true,
                encoding: .utf8
            )
            #expect(
                try CredentialsFile.load(path: path)
                    == Credentials(accessKeyID: "AKIACRLF", secretAccessKey: "crlf-secret")
            )
        }
    }
}

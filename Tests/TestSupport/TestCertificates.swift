import Foundation

/// A throw-away certificate authority made with the `openssl` CLI: a CA, a server certificate for
/// 127.0.0.1 and localhost, and a client certificate, all PEM files in `directory`.
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caFile: String { directory.appendingPathComponent("ca.crt").path }
    public var serverCertFile: String { directory.appendingPathComponent("server.crt").path }
    public var serverKeyFile: String { directory.appendingPathComponent("server.key").path }
    public var clientCertFile: String { directory.appendingPathComponent("client.crt").path }
    public var clientKeyFile: String { directory.appendingPathComponent("client.key").path }

    public struct OpenSSLFailed: Error, CustomStringConvertible {
        public var step: String
        public var output: String
        public var description: String { "openssl \(step) failed: \(output)" }
    }

    /// Test keys only: lets a broker that dropped root privileges read them.
    public func makeReadableByAll() throws {
        for file in [caFile, serverCertFile, serverKeyFile, clientCertFile, clientKeyFile] {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        }
    }

    /// Generates the CA and both certificates (P-256 keys, valid for two days) into `directory`.
    public init(in directory: URL) throws {
        self.directory = directory
        let dir = directory.path
        func openssl(_ step: String, _ arguments: [String]) throws {
            let (status, output) = try ChildProcess.runBlocking("/usr/bin/openssl", arguments)
            guard status == 0 else { throw OpenSSLFailed(step: step, output: output) }
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl("CA", ["req", "-x509"] + ec + ["-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.crt",
                                                   "-days", "2", "-subj", "/CN=accessgw test CA"])
        for (name, san) in [("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")] {
            try openssl("\(name) request", ["req"] + ec + ["-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr",
                                                          "-subj", "/CN=accessgw-test-\(name)"])
            try san.write(toFile: "\(dir)/\(name).ext", atomically: true, encoding: .utf8)
            try openssl("\(name) certificate", ["x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.crt",
                                                "-CAkey", "\(dir)/ca.key", "-CAcreateserial", "-days", "2",
                                                "-extfile", "\(dir)/\(name).ext", "-out", "\(dir)/\(name).crt"])
        }
    }
}

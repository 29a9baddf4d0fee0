import ArgumentParser
import RequestAuthority

/// `accessgw keygen ID`: an issuer's Ed25519 key pair for signing commands (SPEC 4.1).
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write an issuer's Ed25519 key pair: ID.key (private, 0600) and ID.pub (for the gateway's public_key_file)."
    )

    @Argument(help: "The issuer id, as in commands.issuers[].id.") var id: String
    @Option(name: .customLong("dir"), help: "Directory to write the two files into.") var directory = "."

    func run() throws {
        do {
            let paths = try IssuerKeyFiles.generate(id: id, directory: directory)
            print("private key: \(paths.privateKey) (keep it with the issuer; mode 0600)")
            print("public key:  \(paths.publicKey) (give it to the gateway as public_key_file)")
        } catch {
            throw CommandFailure(error.message)
        }
    }
}

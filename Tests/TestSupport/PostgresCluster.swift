import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster for tests: `initdb` in a temporary directory and `postgres` on a free loopback port,
/// both run as the `postgres` user (PostgreSQL refuses to run as root), with trust authentication on 127.0.0.1.
/// `kill()` and `start()` keep the directory and the port, so a test can take the database away and bring it back.
public final class PostgresCluster: @unchecked Sendable {
    // @unchecked: `server` is only replaced by start/kill/stop, which a test calls from one task at a time.
    public static let binaries = "/usr/lib/postgresql/15/bin"
    public let port: UInt16
    public let directory: URL
    private var server: ChildProcess?

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates and starts a cluster (about a second).
    public init() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.binaries)/initdb") else {
            throw Failure(description: "PostgreSQL 15 is not installed (scripts/install-dependencies installs it)")
        }
        port = freeLoopbackPort()
        directory = try makeTemporaryDirectory("accessgw-pg")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let data = directory.appendingPathComponent("data").path
        try Self.asPostgres(["/bin/chown", "-R", "postgres:postgres", directory.path], asRoot: true)
        try Self.asPostgres(["\(Self.binaries)/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                             "--locale=C", "--no-sync"])
        try start()
    }

    deinit {
        server?.stop(signal: SIGKILL)
        try? FileManager.default.removeItem(at: directory)
    }

    private static func asPostgres(_ arguments: [String], asRoot: Bool = false) throws {
        let (status, output) = asRoot
            ? try ChildProcess.run(arguments[0], Array(arguments.dropFirst()))
            : try ChildProcess.run("/usr/sbin/runuser", ["-u", "postgres", "--"] + arguments)
        guard status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) failed (\(status)):\n\(output)") }
    }

    /// Starts the server in the foreground of a child process and waits until it accepts connections.
    public func start() throws {
        let data = directory.appendingPathComponent("data").path
        let child = try ChildProcess("/usr/sbin/runuser", ["-u", "postgres", "--", "\(Self.binaries)/postgres", "-D", data,
                                                           "-p", "\(port)", "-k", directory.path, "-c", "listen_addresses=127.0.0.1",
                                                           "-c", "fsync=off", "-c", "max_connections=50"])
        server = child
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let (status, _) = try? ChildProcess.run("\(Self.binaries)/pg_isready", ["-h", "127.0.0.1", "-p", "\(port)", "-t", "1"]),
               status == 0 { return }
            guard child.isRunning, ContinuousClock.now < deadline else {
                child.stop(signal: SIGKILL)
                throw Failure(description: "postgres did not start on port \(port):\n\(child.text)")
            }
            usleep(100_000)
        }
    }

    /// The postmaster's process id, from the first line of `postmaster.pid`.
    public var postmasterPID: Int32? {
        let file = directory.appendingPathComponent("data/postmaster.pid").path
        return (try? String(contentsOfFile: file, encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Kills the postmaster and every backend (SIGKILL), as a crash would.
    public func kill() {
        if let pid = postmasterPID {
            let backends = (try? ChildProcess.run("/usr/bin/pgrep", ["-P", "\(pid)"]))?.output ?? ""
            Glibc.kill(pid, SIGKILL)
            for backend in backends.split(separator: "\n").compactMap({ Int32($0) }) { Glibc.kill(backend, SIGKILL) }
        }
        server?.stop(signal: SIGKILL)
        server = nil
    }

    /// Stops the server (fast shutdown).
    public func stop() {
        server?.stop(signal: SIGINT)
        server = nil
    }

    /// `postgresql://postgres@127.0.0.1:PORT/NAME`.
    public func url(database: String) -> String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }

    /// Creates a database.
    public func createDatabase(_ name: String) throws {
        _ = try psql("postgres", "CREATE DATABASE \"\(name)\"")
    }

    /// Runs `sql` with psql and returns its unaligned, tuples-only output (`|` between columns), trimmed.
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws -> String {
        let (status, output) = try ChildProcess.run("\(Self.binaries)/psql", [
            "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
        ])
        guard status == 0 else { throw Failure(description: "psql: \(sql):\n\(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

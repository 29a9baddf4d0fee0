import Foundation
import Testing

/// The independent check of the payload contract: `scripts/validate-payloads --serve` (Python `jsonschema`,
/// draft 2020-12) validates what the gateway published against the schemas in `Schemas/`, so a field or value the
/// schemas do not know fails the test that saw it. One validator process serves the whole test run.
public final class PayloadValidator: @unchecked Sendable {
    // @unchecked: the process and its pipes are used only under `lock`.
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static let shared = PayloadValidator()

    private let lock = NSLock()
    private var process: Process?
    private var input: FileHandle?
    private var output: FileHandle?
    private var buffer = Data()

    /// "ok", "skip: …" for a topic that is not the gateway's, or "invalid: …" naming the field and the schema.
    /// With `schema` (such as `replay/reply`) the payload is checked against that schema whatever the topic.
    public func verdict(topic: String, payload: String, schema: String? = nil) -> String {
        lock.withLock {
            do {
                try startIfNeeded()
                var request: [String: String] = ["topic": topic, "payload": payload]
                if let schema { request["schema"] = schema }
                var line = try JSONSerialization.data(withJSONObject: request)
                line.append(0x0A)
                try input?.write(contentsOf: line)
                return try readLine()
            } catch {
                process = nil
                return "invalid: the validator failed: \(error)"
            }
        }
    }

    /// Records a test issue for a payload the schemas reject.
    public func expectValid(topic: String, payload: String, schema: String? = nil) {
        let answer = verdict(topic: topic, payload: payload, schema: schema)
        if answer.hasPrefix("invalid") {
            Issue.record("payload on \(topic) breaks the contract: \(answer)\n\(payload)")
        }
    }

    private func startIfNeeded() throws {
        if let process, process.isRunning { return }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", Self.repository.appendingPathComponent("scripts/validate-payloads").path, "--serve"]
        let stdin = Pipe(), stdout = Pipe()
        child.standardInput = stdin
        child.standardOutput = stdout
        try child.run()
        process = child
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
        buffer = Data()
    }

    private func readLine() throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer = Data(buffer[buffer.index(after: newline)...])
                return line
            }
            guard let chunk = output?.availableData, !chunk.isEmpty else {
                throw ValidatorEnded()
            }
            buffer.append(chunk)
        }
    }

    struct ValidatorEnded: Error, CustomStringConvertible {
        var description: String { "scripts/validate-payloads ended (is Python's jsonschema installed? scripts/install-dependencies)" }
    }
}

import Foundation
import Testing
import TestSupport

/// `Schemas/asyncapi.yaml` is what an integrator feeds to AsyncAPI tooling: it must pass the official AsyncAPI 3.0.0
/// JSON Schema (vendored in `Schemas/vendor/asyncapi/`), every `$ref` must resolve, and every event type and state
/// schema must have its message (issue 19, item 18). `scripts/validate-asyncapi` does the checking.
@Suite struct AsyncAPIDocumentTests {
    static let script = PayloadValidator.repository.appendingPathComponent("scripts/validate-asyncapi").path

    static func validate(_ file: String? = nil) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run("/usr/bin/env", ["python3", script] + (file.map { [$0] } ?? []))
    }

    @Test func theDocumentPassesTheOfficialSchemaAndEveryRefResolves() async throws {
        let (status, output) = try await Self.validate()
        #expect(status == 0, "scripts/validate-asyncapi:\n\(output)")
        #expect(output.hasPrefix("ok: asyncapi.yaml is valid AsyncAPI 3.0.0"), "\(output)")
    }

    /// The check itself fails on what issue 19 found: a parameter whose default is a key, a dangling message
    /// `$ref`, a binding outside the MQTT binding's schema, a payload schema no message names.
    @Test func theCheckNamesABrokenParameterADanglingRefABadBindingAndAMissingMessage() async throws {
        let original = try String(contentsOf: PayloadValidator.repository.appendingPathComponent("Schemas/asyncapi.yaml"),
                                  encoding: .utf8)
        let broken = original
            .replacingOccurrences(of: "      command:\n        description: a command name from the device's profile\n        examples: [open, close, call]\n",
                                  with: "      command: { description: a command name, such as open }\n")
            .replacingOccurrences(of: ##"{ $ref: "#/components/messages/access_wrong_way" }"##,
                                  with: ##"{ $ref: "#/components/messages/access_wrongway" }"##)
            .replacingOccurrences(of: "mqtt: { qos: 1, retain: true,", with: "mqtt: { qos: 3, retain: true,")
            .replacingOccurrences(of: #"schema: { $ref: "./state/turnstile/v1.json" }"#,
                                  with: #"schema: { $ref: "./state/face-door/v1.json" }"#)
        #expect(broken != original)
        // Beside the original, so that its relative $refs to the payload schemas resolve as they do there.
        let file = PayloadValidator.repository.appendingPathComponent("Schemas/.asyncapi-broken-\(UUID().uuidString).yaml")
        try broken.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let (status, output) = try await Self.validate(file.path)
        #expect(status == 1)
        #expect(output.contains("channels/commands/parameters/command: 'such as open' does not match"), "\(output)")
        #expect(output.contains("nothing at #/components/messages/access_wrongway"),
                "\(output)")
        #expect(output.contains("components/operationBindings/qos1Retained/mqtt/qos: 3 is not one of [0, 1, 2]"), "\(output)")
        #expect(output.contains("Schemas/state/turnstile/v1.json has no message in components/messages"), "\(output)")
    }
}

import AccessModel
import DeviceProfiles
import Foundation
import Testing
import TestSupport

/// The schemas in `Schemas/` are the contract with subscribers; the profiles in `Devices/` decide what the gateway
/// really sends. This walks every profile's event codes and state fields and fails, naming the file and the field,
/// when a schema is missing or does not admit what a profile produces. A missing event schema comes with a
/// starting point to save as the file.
@Suite struct EventSchemaDriftTests {
    static let schemas = PayloadValidator.repository.appendingPathComponent("Schemas")

    static func profiles() throws -> [DeviceProfile] {
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.devicesDirectory).filter { $0.hasSuffix(".yaml") }.sorted()
        return try files.map { try DeviceProfile.load(path: "\(Fixtures.devicesDirectory)/\($0)") }
    }

    static func json(_ relative: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: schemas.appendingPathComponent(relative).path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// The JSON Schema fragment for what a field source yields (`FieldSource.value(in:)`).
    static func expected(_ source: FieldSource) -> (types: Set<String>, words: Set<String>?) {
        if source.role == .subject { return (["string"], nil) }
        if let words = source.words { return (["string"], Set(words.values)) }
        switch source.part {
        case .bit: return (["boolean"], nil)
        case .bitNumbers: return (["array"], nil)
        default: return (source.divisor == nil ? ["integer"] : ["number"], nil)
        }
    }

    static func expected(_ constant: JSONValue) -> (types: Set<String>, words: Set<String>?) {
        switch constant {
        case let .string(text): (["string"], [text])
        case .bool: (["boolean"], nil)
        case .int: (["integer"], nil)
        case .double: (["number"], nil)
        default: (["object"], nil)
        }
    }

    /// What is wrong with `property` for a value of `types` and `words`; nil when it admits them.
    static func mismatch(_ property: [String: Any], types: Set<String>, words: Set<String>?) -> String? {
        let declared: Set<String> = (property["type"] as? String).map { [$0] } ?? Set(property["type"] as? [String] ?? [])
        let admitted = declared.contains("number") ? declared.union(["integer"]) : declared
        if !declared.isEmpty, !types.isSubset(of: admitted) {
            return "is \(declared.sorted()) but the profile produces \(types.sorted())"
        }
        if let words, let allowed = property["enum"] as? [Any] {
            let missing = words.subtracting(allowed.map { "\($0)" })
            if !missing.isEmpty { return "does not list \(missing.sorted()) in its enum" }
        }
        return nil
    }

    /// A schema to start from for a type no schema covers yet, in the layout of the others.
    static func proposal(for type: String, fields: [(String, FieldSource?, JSONValue?)]) -> String {
        let properties = fields.map { name, source, constant in
            let (types, words) = source.map(expected) ?? expected(constant ?? .null)
            let enumeration = words.map { #", "enum": [\#($0.sorted().map { "\"\($0)\"" }.joined(separator: ", "))]"# } ?? ""
            return #"        "\#(name)": { "type": "\#(types.first!)"\#(enumeration), "description": "…" }"#
        }.joined(separator: ",\n")
        let id = CloudEvent.dataschema(of: type)
        return """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "\(id)",
          "title": "\(type)",
          "description": "…",
          "$ref": "../../cloudevent/v1.json#/$defs/envelope",
          "properties": {
            "type": { "const": "\(type)" },
            "dataschema": { "const": "\(id)" },
            "data": {
              "$ref": "../../cloudevent/v1.json#/$defs/deviceData",
              "properties": {
        \(properties)
              },
              "unevaluatedProperties": false
            }
          },
          "unevaluatedProperties": false
        }
        """
    }

    @Test func everyProfileEventCodeIsAdmittedByItsTypesSchema() throws {
        var problems: [String] = []
        var rulesByType: [String: [(profile: String, rule: EventRule)]] = [:]
        for profile in try Self.profiles() {
            for (_, rule) in profile.events.sorted(by: { $0.key < $1.key }) { rulesByType[rule.type, default: []].append((profile.name, rule)) }
        }
        for (type, rules) in rulesByType.sorted(by: { $0.key < $1.key }) {
            let file = String(CloudEvent.dataschema(of: type).dropFirst(CloudEvent.schemaBase.count))
            guard let schema = Self.json(file) else {
                let fields = rules.flatMap { $0.rule.constants.map { ($0.0, FieldSource?.none, Optional($0.1)) }
                    + $0.rule.fields.map { ($0.0, Optional($0.1), JSONValue?.none) } }
                var seen = Set<String>()
                problems.append("no schema for event type \(type) (profile \(rules[0].profile) code \(rules[0].rule.code)): "
                                + "save this as Schemas/\(file), fill in the descriptions, and see Schemas/README.md:\n"
                                + Self.proposal(for: type, fields: fields.filter { seen.insert($0.0).inserted }))
                continue
            }
            let data = (schema["properties"] as? [String: Any])?["data"] as? [String: Any] ?? [:]
            let properties = data["properties"] as? [String: [String: Any]] ?? [:]
            for (profile, rule) in rules {
                let place = "Schemas/\(file): data.%@ (profile \(profile), code \(rule.code))"
                var produced: [(String, Set<String>, Set<String>?)] = rule.constants.map { name, value in
                    let (types, words) = Self.expected(value)
                    return (name, types, words)
                }
                produced += rule.fields.map { name, source in
                    let (types, words) = Self.expected(source)
                    return (name, types, words)
                }
                // `subject_field`: the subject under each name its enum gives, or `subject` for a value outside it.
                if let named = rule.subjectField {
                    produced += (Set(named.words?.values.map { $0 } ?? []).sorted() + ["subject"]).map { ($0, ["string"], nil) }
                }
                for (name, types, words) in produced {
                    guard let property = properties[name] else {
                        problems.append(String(format: place, name) + " is missing: the profile produces \(types.sorted())"
                                        + (words.map { " with values \($0.sorted())" } ?? ""))
                        continue
                    }
                    if let mismatch = Self.mismatch(property, types: types, words: words) {
                        problems.append(String(format: place, name) + " " + mismatch)
                    }
                }
                // A required field must be produced by every code of the type (constants and numbers always are;
                // a subject or a code outside an enum can be left out).
                let always = Set(rule.constants.map(\.0) + rule.fields.filter { $0.1.role != .subject && $0.1.words == nil }.map(\.0))
                for name in data["required"] as? [String] ?? [] where !always.contains(name) {
                    problems.append(String(format: place, name) + " is required, but this code does not always produce it")
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.count) schema problem(s):\n\(problems.joined(separator: "\n"))")
    }

    @Test func everyProfileStateFieldIsAdmittedByItsKindsStateSchema() throws {
        var problems: [String] = []
        for profile in try Self.profiles() {
            guard let block = profile.state else { continue }
            let file = "state/\(profile.kind)/v1.json"
            guard let schema = Self.json(file) else {
                problems.append("no state schema for kind \(profile.kind) (profile \(profile.name)): add Schemas/\(file), like state/face-door/v1.json")
                continue
            }
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            for field in block.fields {
                guard let property = properties[field.name] else {
                    problems.append("Schemas/\(file): \(field.name) is missing (profile \(profile.name))")
                    continue
                }
                switch field.presentation {
                case let .words(table):
                    let pattern = try NSRegularExpression(pattern: property["pattern"] as? String ?? "^$")
                    for word in table.values where pattern.firstMatch(in: word, range: NSRange(word.startIndex..., in: word)) == nil {
                        problems.append("Schemas/\(file): \(field.name) does not admit '\(word)' (profile \(profile.name))")
                    }
                case let .flags(bits):
                    let allowed = Set(((property["items"] as? [String: Any])?["enum"] as? [String]) ?? [])
                    for name in bits.values where !allowed.contains(name) {
                        problems.append("Schemas/\(file): \(field.name) does not list flag '\(name)' (profile \(profile.name))")
                    }
                default:
                    break
                }
            }
            if properties["online"] == nil { problems.append("Schemas/\(file): online is missing") }
        }
        #expect(problems.isEmpty, "\(problems.count) schema problem(s):\n\(problems.joined(separator: "\n"))")
    }

    @Test func theIndependentValidatorRejectsAFieldTheSchemaDoesNotKnowAndAWrongValue() throws {
        var record = RecordBuilder(code: 1)
        record.seq = 5; record.point = 1; record.direction = 1; record.value = 934; record.subject = Array("P-0012".utf8)
        var (event, _) = Fixtures.decode(try Fixtures.profile("face-door"), record)
        event.serial = DeviceSerial(sanitising: "SIM-FD-0001")
        let source = EventSource(site: "test-site", gateway: "gw-01", device: "door-3e", kind: "face-door")
        let topic = CloudEvent.topic(of: event, source: source, prefix: "accessgw")
        let good = CloudEvent.envelope(event, source: source, journalSeq: 1, epoch: "00ff")
        #expect(PayloadValidator.shared.verdict(topic: topic, payload: good.serialized) == "ok")

        func altered(_ change: (inout [(String, JSONValue)]) -> Void) -> String {
            guard case var .object(envelope) = good, let index = envelope.firstIndex(where: { $0.0 == "data" }),
                  case var .object(data) = envelope[index].1 else { return "" }
            change(&data)
            envelope[index].1 = .object(data)
            return JSONValue.object(envelope).serialized
        }
        let unknownField = PayloadValidator.shared.verdict(topic: topic, payload: altered { $0.append(("note", .string("x"))) })
        #expect(unknownField.hasPrefix("invalid") && unknownField.contains("'note' was unexpected"), "\(unknownField)")
        let wrongWord = PayloadValidator.shared.verdict(topic: topic, payload: altered { data in
            data = data.map { $0.0 == "method" ? ("method", .string("telepathy")) : $0 }
        })
        #expect(wrongWord.hasPrefix("invalid") && wrongWord.contains("telepathy"), "\(wrongWord)")
        let missingSeq = PayloadValidator.shared.verdict(topic: topic, payload: altered { $0.removeAll { $0.0 == "seq" } })
        #expect(missingSeq.hasPrefix("invalid") && missingSeq.contains("'seq' is a required property"), "\(missingSeq)")
        let unknownType = PayloadValidator.shared.verdict(
            topic: "accessgw/test-site/door-3e/event/passage.teleported",
            payload: good.serialized.replacingOccurrences(of: "access.granted", with: "passage.teleported"))
        #expect(unknownType.contains("no schema for event type 'passage.teleported'"), "\(unknownType)")
        #expect(PayloadValidator.shared.verdict(topic: "accessgw/test-site/gateway/gw-01/status", payload: #"{"state":"online"}"#)
            .hasPrefix("invalid"), "an online status names gateway, version, started and since")
    }
}

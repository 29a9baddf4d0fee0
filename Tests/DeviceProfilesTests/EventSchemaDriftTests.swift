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

    /// One event a profile can emit, and the data fields it carries: a map-1 event code, or a map-2 rule's outcome
    /// (SPEC 3.5) with the events the engine makes beside it (counter reset, events lost, an unknown code).
    struct Emission {
        var type: String
        var profile: DeviceProfile
        /// "code 16" or "rule at line 40, code 2 (card-reader)".
        var place: String
        var produced: [(name: String, types: Set<String>, words: Set<String>?)]
        /// Fields every event of this emission carries, for the schema's `required`.
        var always: Set<String>
        /// Map-1 constants and fields, for a proposed schema when the type has none.
        var proposal: [(String, FieldSource?, JSONValue?)] = []
    }

    /// The JSON type a map-2 field's value has (`MapReading.value`).
    static func expected(_ field: MapField) -> (types: Set<String>, words: Set<String>?) {
        switch field.type {
        case .string, .bcdTime: return (["string"], nil)
        case .float32: return (["number"], nil)
        default: break
        }
        switch field.presentation {
        // A value outside the table reads `unknown_<n>`: the schema's enum lists the table's words.
        case let .words(table): return (["string"], Set(table.values))
        case .flags: return (["array"], nil)
        case .decimal, .unixTime: return (["string"], nil)
        case .number:
            if field.scale != nil || field.add != nil { return (["number"], nil) }
            if (field.type == .bit || field.type == .bool) { return (["boolean"], nil) }
            return field.type == .u64 ? (["integer", "string"], nil) : (["integer"], nil)
        }
    }

    static func emissions(of profile: DeviceProfile) -> [Emission] {
        var emissions: [Emission] = []
        for (_, rule) in profile.events.sorted(by: { $0.key < $1.key }) {
            var produced = rule.constants.map { name, value in
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
            // Constants and numbers always come; a subject or a code outside an enum can be left out.
            let always = Set(rule.constants.map(\.0) + rule.fields.filter { $0.1.role != .subject && $0.1.words == nil }.map(\.0))
            emissions.append(Emission(type: rule.type, profile: profile, place: "code \(rule.code)", produced: produced, always: always,
                                      proposal: rule.constants.map { ($0.0, nil, $0.1) } + rule.fields.map { ($0.0, $0.1, nil) }))
        }
        guard let map = profile.map else { return emissions }
        for rule in map.rules {
            let watched = map.fields[rule.trigger.watched]
            func fields(_ outcome: MapOutcome?) -> [(name: String, types: Set<String>, words: Set<String>?)] {
                guard let outcome else { return [] }
                return outcome.fields.map { name, source in
                    switch source {
                    case let .field(index): let (types, words) = Self.expected(map.fields[index]); return (name, types, words)
                    case .from, .count: return (name, ["integer"], nil)
                    }
                }
            }
            func emission(_ outcome: MapOutcome, _ place: String) -> Emission {
                var produced = outcome.constants.map { name, value in
                    let (types, words) = Self.expected(value)
                    return (name, types, words)
                } + fields(outcome)
                if case .counter = rule.trigger, !outcome.fields.contains(where: { $0.1 == .count }) { produced.append(("count", ["integer"], nil)) }
                // A field can read null (a BCD time that is no time); constants, counts and numbers always come.
                let always = Set(produced.filter { !$0.types.contains("string") || $0.words != nil }.map(\.name)
                                 + outcome.constants.map(\.0))
                return Emission(type: outcome.type, profile: profile, place: place, produced: produced, always: always)
            }
            let trigger = switch rule.trigger { case .change: "change"; case .counter: "counter"; case .latest: "latest" }
            let place = "rule at line \(rule.line) (\(trigger): \(watched.name))"
            switch rule.trigger {
            case .change:
                if let outcome = rule.outcome { emissions.append(emission(outcome, place)) }
            case .counter:
                if let outcome = rule.outcome { emissions.append(emission(outcome, place)) }
                emissions.append(Emission(type: "device.counter_reset", profile: profile, place: place + ", counter went back",
                                          produced: [("counter", ["string"], nil), ("from", ["integer"], nil), ("to", ["integer", "null"], nil)],
                                          always: ["counter", "from", "to"]))
            case let .latest(_, code, _, _):
                if code == nil, let outcome = rule.outcome { emissions.append(emission(outcome, place)) }
                for (number, outcome) in rule.codes.sorted(by: { $0.key < $1.key }) {
                    emissions.append(emission(outcome, place + ", code \(number)"))
                }
                if code != nil {
                    emissions.append(Emission(type: "device.unknown_event", profile: profile, place: place + ", a code without an entry",
                                              produced: [("code", ["integer", "null"], nil)] + fields(rule.outcome), always: []))
                }
                emissions.append(Emission(type: "gateway.events_lost", profile: profile, place: place + ", counter grew by more than 1",
                                          produced: [("lost", ["object"], nil)], always: ["lost"]))
            }
        }
        return emissions
    }

    /// Every event type any profile (map 1 and map 2) can emit, each field it can carry, its JSON type and enum
    /// words, against `Schemas/events/{type}/v1.json`; also the schema's `kind` enum against the profile's kind.
    @Test func everyEventAProfileCanEmitIsAdmittedByItsTypesSchema() throws {
        var problems: [String] = []
        let byType = Dictionary(grouping: try Self.profiles().flatMap(Self.emissions), by: \.type)
        #expect(Set(byType.values.joined().filter { $0.profile.map != nil }.map(\.profile.name))
                == ["barrier-gate", "card-reader", "lift-monitor", "turnstile"], "the map-2 profiles are walked")
        for (type, emissions) in byType.sorted(by: { $0.key < $1.key }) {
            let file = String(CloudEvent.dataschema(of: type).dropFirst(CloudEvent.schemaBase.count))
            guard let schema = Self.json(file) else {
                var seen = Set<String>()
                let fields = emissions.flatMap(\.proposal).filter { seen.insert($0.0).inserted }
                problems.append("no schema for event type \(type) (profile \(emissions[0].profile.name) \(emissions[0].place)): "
                                + "save this as Schemas/\(file), fill in the descriptions, and see Schemas/README.md:\n"
                                + Self.proposal(for: type, fields: fields))
                continue
            }
            let data = (schema["properties"] as? [String: Any])?["data"] as? [String: Any] ?? [:]
            let properties = data["properties"] as? [String: [String: Any]] ?? [:]
            for emission in emissions {
                let place = "Schemas/\(file): data.%@ (profile \(emission.profile.name), \(emission.place))"
                for (name, types, words) in emission.produced {
                    guard let property = properties[name] else {
                        problems.append(String(format: place, name) + " is missing: the profile produces \(types.sorted())"
                                        + (words.map { " with values \($0.sorted())" } ?? ""))
                        continue
                    }
                    if let mismatch = Self.mismatch(property, types: types, words: words) {
                        problems.append(String(format: place, name) + " " + mismatch)
                    }
                }
                if let kinds = properties["kind"]?["enum"] as? [String], !kinds.contains(emission.profile.kind) {
                    problems.append(String(format: place, "kind") + " does not list the profile's kind \(emission.profile.kind)")
                }
                for name in data["required"] as? [String] ?? [] where !emission.always.contains(name) {
                    problems.append(String(format: place, name) + " is required, but this event does not always carry it")
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
        // Map-2 profiles (SPEC 3.5): the fields their `state:` lists, as `MapReading.value` presents them; the schema is
        // the profile's own (state/barrier-gate) or its kind's (lift-monitor: state/elevator).
        var walked: [String] = []
        for profile in try Self.profiles() {
            guard let map = profile.map, !map.state.isEmpty else { continue }
            walked.append(profile.name)
            guard let file = [profile.name, profile.kind].map({ "state/\($0)/v1.json" }).first(where: { Self.json($0) != nil }),
                  let schema = Self.json(file) else {
                problems.append("no state schema for profile \(profile.name) (kind \(profile.kind)): add Schemas/state/\(profile.name)/v1.json, "
                                + "like state/turnstile/v1.json")
                continue
            }
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            for field in map.state.map({ map.fields[$0] }) {
                guard let property = properties[field.name] else {
                    problems.append("Schemas/\(file): \(field.name) is missing (profile \(profile.name))")
                    continue
                }
                let (types, words) = Self.expected(field)
                if let pattern = property["pattern"] as? String, let words {
                    let expression = try NSRegularExpression(pattern: pattern)
                    for word in words where expression.firstMatch(in: word, range: NSRange(word.startIndex..., in: word)) == nil {
                        problems.append("Schemas/\(file): \(field.name) does not admit '\(word)' (profile \(profile.name))")
                    }
                }
                if case let .flags(bits) = field.presentation {
                    let allowed = Set(((property["items"] as? [String: Any])?["enum"] as? [String]) ?? [])
                    for name in bits.values where !allowed.contains(name) {
                        problems.append("Schemas/\(file): \(field.name) does not list flag '\(name)' (profile \(profile.name))")
                    }
                }
                // `type` and `enum` as for events; a schema giving only an enum of words admits strings.
                let declared = property["type"] != nil ? property : property.merging(["type": "string"]) { $1 }
                if let mismatch = Self.mismatch(declared, types: types, words: words) {
                    problems.append("Schemas/\(file): \(field.name) " + mismatch + " (profile \(profile.name))")
                }
            }
            if properties["online"] == nil { problems.append("Schemas/\(file): online is missing") }
        }
        #expect(walked == ["barrier-gate", "lift-monitor", "turnstile"], "the map-2 profiles with state are walked")
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

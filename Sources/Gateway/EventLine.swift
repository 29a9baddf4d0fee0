import AccessModel
import Foundation
import Journal

/// One journalled event as a short aligned line for operators: time, device, type, and the fields that matter.
public enum EventLine {
    /// The data fields shown, in this order; the envelope (site, gateway, kind, location, seq, raw…) is left out.
    static let shown = ["person", "card", "pass", "plate", "colour", "vehicle_type", "visitor", "method", "reason", "score",
                        "door", "lane", "floor", "floors", "direction", "fault", "fault_code", "in_door_zone", "mode",
                        "seconds", "command_id", "lost", "skew_seconds", "subject", "subject_hex", "version", "devices"]

    public static func render(_ event: StoredEvent, colour: Bool) -> String {
        let line = render(payload: event.payload, colour: colour)
            ?? TerminalText.escaped("\(event.time.rfc3339)  \(event.device) \(event.type)")
        guard let reason = event.refusedReason else { return line }
        return line + "  REFUSED BY BROKER (reason 0x\(String(reason, radix: 16)))"
    }

    /// The line for a CloudEvent as published; nil when the payload is not one.
    public static func render(payload: String, colour: Bool) -> String? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any],
              let type = object["type"] as? String, let time = object["time"] as? String,
              let body = object["data"] as? [String: Any] else { return nil }
        let device = body["device"] as? String ?? object["subject"] as? String ?? "?"
        let clock = String(time.dropFirst(11).dropLast())  // HH:MM:SS.mmm
        let fields = shown.compactMap { key in body[key].map { "\(key) \(text($0))" } }
        let paddedDevice = device.padding(toLength: max(12, device.count), withPad: " ", startingAt: 0)
        let paddedType = type.padding(toLength: max(24, type.count), withPad: " ", startingAt: 0)
        var line = "\(time.prefix(10)) \(clock)  \(paddedDevice) \(paddedType) \(fields.joined(separator: "  "))"
        while line.hasSuffix(" ") { line.removeLast() }
        line = TerminalText.escaped(line)  // subjects and ids come from devices: no raw ESC/BEL reaches the terminal
        guard body["alarm"] as? Bool == true else { return line }
        return colour ? "\u{1B}[1;31m\(line)  ALARM\u{1B}[0m" : line + "  ALARM"
    }

    static func text(_ value: Any) -> String {
        switch value {
        case let string as String: string
        case let number as NSNumber:
            "\(type(of: number))".contains("Boolean") ? (number.boolValue ? "yes" : "no") : "\(number)"
        case let list as [Any]: list.map(text).joined(separator: ",")
        case let object as [String: Any]: object.keys.sorted().map { "\($0)=\(text(object[$0]!))" }.joined(separator: " ")
        default: "\(value)"
        }
    }
}

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
        let time = event.time.rfc3339
        let clock = String(time.dropFirst(11).dropLast())  // HH:MM:SS.mmm
        let day = String(time.prefix(10))
        var fields: [String] = []
        if let data = (try? JSONSerialization.jsonObject(with: Data(event.payload.utf8))) as? [String: Any],
           let body = data["data"] as? [String: Any] {
            for key in shown {
                guard let value = body[key] else { continue }
                fields.append("\(key) \(text(value))")
            }
        }
        let device = event.device.padding(toLength: max(12, event.device.count), withPad: " ", startingAt: 0)
        let type = event.type.padding(toLength: max(24, event.type.count), withPad: " ", startingAt: 0)
        var line = "\(day) \(clock)  \(device) \(type) \(fields.joined(separator: "  "))"
        while line.hasSuffix(" ") { line.removeLast() }
        guard event.alarm else { return line }
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

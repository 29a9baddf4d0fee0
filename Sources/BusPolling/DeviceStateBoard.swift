import AccessModel
import Synchronization

/// The latest state block of every device, in words, with its online flag: what the retained
/// `{prefix}/{site}/{device}/state` topic carries. Pollers write on change; the publisher reads what changed.
public final class DeviceStateBoard: Sendable {
    struct Entry {
        var fields: [(String, JSONValue)] = []
        var online: Bool?
        var version: UInt64 = 0
    }

    private let entries: Mutex<[Entry]>

    public init(deviceCount: Int) {
        entries = Mutex([Entry](repeating: Entry(), count: deviceCount))
    }

    /// Makes room for devices added by a reload; slots are never taken away.
    public func grow(toDeviceCount count: Int) {
        entries.withLock { all in
            if all.count < count { all += [Entry](repeating: Entry(), count: count - all.count) }
        }
    }

    /// Records a freshly read state block; returns whether anything changed.
    @discardableResult
    public func update(slot: UInt16, fields: [(String, JSONValue)]) -> Bool {
        entries.withLock { all in
            guard JSONValue.object(all[Int(slot)].fields) != JSONValue.object(fields) else { return false }
            all[Int(slot)].fields = fields
            all[Int(slot)].version &+= 1
            return true
        }
    }

    public func setOnline(slot: UInt16, _ online: Bool) {
        entries.withLock { all in
            guard all[Int(slot)].online != online else { return }
            all[Int(slot)].online = online
            all[Int(slot)].version &+= 1
        }
    }

    /// The state payloads that changed since the versions in `seen` (updated in place), by device slot.
    public func changes(since seen: inout [UInt64]) -> [(slot: UInt16, state: JSONValue)] {
        entries.withLock { all in
            if seen.count < all.count { seen += [UInt64](repeating: 0, count: all.count - seen.count) }
            var changed: [(UInt16, JSONValue)] = []
            for (index, entry) in all.enumerated() where entry.version != seen[index] {
                seen[index] = entry.version
                changed.append((UInt16(index), Self.payload(entry)))
            }
            return changed
        }
    }

    /// Every device's last state with `online: false`, by slot: what its retained topic says once the gateway
    /// stopped watching it.
    public func offlineStates() -> [(slot: UInt16, state: JSONValue)] {
        entries.withLock { all in
            all.indices.map { (UInt16($0), Self.payload(Entry(fields: all[$0].fields, online: false))) }
        }
    }

    static func payload(_ entry: Entry) -> JSONValue {
        .object(entry.fields + [("online", entry.online.map(JSONValue.bool) ?? .null)])
    }
}

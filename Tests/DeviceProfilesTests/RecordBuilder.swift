import AccessModel
import DeviceProfiles
import Foundation

/// Builds the 32 registers of a map-version-1 record straight from the SPEC table, independent of any profile.
struct RecordBuilder {
    var seq: UInt32 = 1
    var time: UInt32 = 1_795_766_462  // 2026-11-27T08:01:02Z
    var millis: UInt16 = 345
    var code: UInt16
    var point: Int16 = 0
    var direction: UInt8 = 0
    var flags: UInt8 = 0
    var value: UInt32 = 0
    var extra: UInt32 = 0
    var subject: [UInt8] = []

    init(code: UInt16) { self.code = code }

    var words: [UInt16] {
        var w = [UInt16](repeating: 0, count: 32)
        w[0] = UInt16(seq >> 16); w[1] = UInt16(seq & 0xFFFF)
        w[2] = UInt16(time >> 16); w[3] = UInt16(time & 0xFFFF)
        w[4] = millis
        w[5] = code
        w[6] = UInt16(bitPattern: point)
        w[7] = UInt16(flags) << 8 | UInt16(direction)
        w[8] = UInt16(value >> 16); w[9] = UInt16(value & 0xFFFF)
        w[10] = UInt16(extra >> 16); w[11] = UInt16(extra & 0xFFFF)
        let bytes = subject + [UInt8](repeating: 0, count: max(0, 40 - subject.count))
        for i in 0..<20 { w[12 + i] = UInt16(bytes[2 * i]) << 8 | UInt16(bytes[2 * i + 1]) }
        return w
    }
}

enum Fixtures {
    static let devicesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Devices").path

    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

    static func profile(_ name: String) throws -> DeviceProfile {
        try DeviceProfile.load(path: "\(devicesDirectory)/\(name).yaml")
    }

    static func decode(_ profile: DeviceProfile, _ record: RecordBuilder, boot: UInt16 = 7) -> (event: NormalisedEvent, problems: [RecordProblem]) {
        let decoder = RecordDecoder(profile: profile)!
        return record.words.withUnsafeBufferPointer {
            decoder.event(of: $0, device: "door-3e", boot: boot, observedAt: Timestamp(millisecondsSinceEpoch: 1_795_766_462_401))
        }
    }
}

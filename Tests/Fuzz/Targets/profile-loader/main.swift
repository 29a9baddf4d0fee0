import AccessModel
import DeviceProfiles
import FuzzSupport

/// A profile file as `check` and `run` load it; one that loads also decodes a record from the words after the
/// first NUL, so arbitrary field layouts, types, orders and encodings meet arbitrary registers.
fuzz { input in
    let cut = input.bytes.firstIndex(of: 0) ?? input.bytes.count
    let text = String(decoding: UnsafeBufferPointer(rebasing: input.bytes[..<cut]), as: UTF8.self)
    guard let profile = try? DeviceProfile.parse(text, file: "fuzz.yaml"), let decoder = RecordDecoder(profile: profile) else {
        return
    }
    let record = UnsafeBufferPointer(rebasing: input.bytes[min(cut + 1, input.bytes.count)...])
    var words = FuzzInput(record).words
    let size = profile.eventLog!.recordSize
    if words.count < size { words += [UInt16](repeating: 0, count: size - words.count) }
    words.withUnsafeBufferPointer { buffer in
        _ = decoder.event(of: buffer, device: "d", boot: 1, observedAt: Timestamp(millisecondsSinceEpoch: 0))
    }
}

/// A place in a device's event log: which controller (its serial, as in event ids), which boot, which seq. The
/// journal's device cursor is one (where a restarted reader starts), and so is the last seq a loss report covers.
public struct LogPosition: Sendable, Equatable {
    public var serial: DeviceSerial
    public var boot: UInt16
    public var seq: UInt32

    public init(serial: DeviceSerial, boot: UInt16, seq: UInt32) {
        self.serial = serial
        self.boot = boot
        self.seq = seq
    }
}

import DeviceProfiles
/// Executes one Modbus request PDU (function code and data) against a device and builds the reply PDU.
///
/// Supports functions 03, 06 and 16; anything else answers exception 01. Pure apart from the device.
public enum ModbusPDU {
    /// The reply PDU for `request`; exceptions come back as `function | 0x80, code`.
    public static func reply(to request: [UInt8], device: SimulatedDevice) -> [UInt8] {
        guard let function = request.first else { return exception(0, .illegalFunction("empty PDU")) }
        do throws(ModbusException) {
            return try execute(function: function, data: Array(request.dropFirst()), device: device)
        } catch {
            return exception(function, error)
        }
    }

    /// The exception reply for `function`.
    public static func exception(_ function: UInt8, _ error: ModbusException) -> [UInt8] {
        [function | 0x80, error.code]
    }

    /// Executes a write without building a reply, for RTU broadcasts; errors are dropped as a bus does.
    public static func executeBroadcast(_ request: [UInt8], device: SimulatedDevice) {
        guard let function = request.first, function == 6 || function == 16 else { return }
        _ = try? execute(function: function, data: Array(request.dropFirst()), device: device)
    }

    private static func execute(function: UInt8, data: [UInt8], device: SimulatedDevice) throws(ModbusException)
        -> [UInt8] {
        func word(_ i: Int) -> Int { Int(data[i]) << 8 | Int(data[i + 1]) }
        if device.mapProfileName != nil {
            return try executeMap(function: function, data: data, device: device)
        }
        switch function {
        case 0x03:
            guard data.count == 4 else { throw .illegalDataValue("function 03 needs 4 data bytes, got \(data.count)") }
            let words = try device.readRegisters(address: word(0), count: word(2))
            var reply: [UInt8] = [0x03, UInt8(words.count * 2)]
            reply.reserveCapacity(2 + words.count * 2)
            for w in words {
                reply.append(UInt8(w >> 8))
                reply.append(UInt8(w & 0xFF))
            }
            return reply
        case 0x06:
            guard data.count == 4 else { throw .illegalDataValue("function 06 needs 4 data bytes, got \(data.count)") }
            try device.writeRegisters(address: word(0), values: [UInt16(word(2))])
            return [0x06] + data
        case 0x10:
            guard data.count >= 5 else { throw .illegalDataValue("function 16 needs at least 5 data bytes") }
            let quantity = word(2)
            let byteCount = Int(data[4])
            guard (1...123).contains(quantity), byteCount == quantity * 2, data.count == 5 + byteCount else {
                throw .illegalDataValue("function 16 quantity \(quantity) does not match byte count \(byteCount)")
            }
            let values = (0..<quantity).map { UInt16(word(5 + $0 * 2)) }
            try device.writeRegisters(address: word(0), values: values)
            return [0x10] + data.prefix(4)
        default:
            throw .illegalFunction("function \(function) is not supported")
        }
    }

    /// Functions 01–04 of a map-2 device; it takes no writes.
    private static func executeMap(function: UInt8, data: [UInt8], device: SimulatedDevice) throws(ModbusException) -> [UInt8] {
        let table: ModbusTable
        switch function {
        case 0x01: table = .coils
        case 0x02: table = .discreteInputs
        case 0x03: table = .holding
        case 0x04: table = .input
        default: throw .illegalFunction("function \(function) is not supported by \(device.name)")
        }
        guard data.count == 4 else { throw .illegalDataValue("function \(function) needs 4 data bytes, got \(data.count)") }
        let values = try device.readMap(table, address: Int(data[0]) << 8 | Int(data[1]), count: Int(data[2]) << 8 | Int(data[3]))
        if table.holdsBits {
            var bytes = [UInt8](repeating: 0, count: (values.count + 7) / 8)
            for (i, bit) in values.enumerated() where bit != 0 { bytes[i / 8] |= 1 << UInt8(i % 8) }
            return [function, UInt8(bytes.count)] + bytes
        }
        var reply: [UInt8] = [function, UInt8(values.count * 2)]
        for w in values {
            reply.append(UInt8(w >> 8))
            reply.append(UInt8(w & 0xFF))
        }
        return reply
    }
}

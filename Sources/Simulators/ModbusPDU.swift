import DeviceProfiles
/// Executes one Modbus request PDU (function code and data) against a device and builds the reply PDU.
///
/// Supports functions 03, 06, 16 and 23 (write, then read, in one request); anything else answers exception 01. Pure apart from the device.
public enum ModbusPDU {
    /// The reply PDU for `request`; exceptions come back as `function | 0x80, code`.
    public static func reply(to request: [UInt8], device: SimulatedDevice) -> [UInt8] {
        var reply: [UInt8] = []
        request.withUnsafeBufferPointer { appendReply(to: $0, device: device, to: &reply) }
        return reply
    }

    /// Appends the reply PDU for `request` to `output` (the TCP server's frame, without a PDU copy on the way).
    static func appendReply(to request: UnsafeBufferPointer<UInt8>, device: SimulatedDevice, to output: inout [UInt8]) {
        guard let function = request.first else {
            appendException(0, code: ModbusException.illegalFunction("empty PDU").code, to: &output)
            return
        }
        let start = output.count
        do throws(ModbusException) {
            try execute(function: function, data: UnsafeBufferPointer(rebasing: request.dropFirst()), device: device, to: &output)
        } catch {
            output.removeSubrange(start...)
            appendException(function, code: error.code, to: &output)
        }
    }

    /// The exception reply for `function`.
    public static func exception(_ function: UInt8, _ error: ModbusException) -> [UInt8] {
        [function | 0x80, error.code]
    }

    static func appendException(_ function: UInt8, code: UInt8, to output: inout [UInt8]) {
        output.append(function | 0x80)
        output.append(code)
    }

    /// Executes a write without building a reply, for RTU broadcasts; errors are dropped as a bus does.
    public static func executeBroadcast(_ request: [UInt8], device: SimulatedDevice) {
        guard let function = request.first, function == 6 || function == 16 else { return }
        var ignored: [UInt8] = []
        request.withUnsafeBufferPointer {
            _ = try? execute(function: function, data: UnsafeBufferPointer(rebasing: $0.dropFirst()), device: device, to: &ignored)
        }
    }

    private static func execute(function: UInt8, data: UnsafeBufferPointer<UInt8>, device: SimulatedDevice,
                                to output: inout [UInt8]) throws(ModbusException) {
        func word(_ i: Int) -> Int { Int(data[i]) << 8 | Int(data[i + 1]) }
        if device.mapProfileName != nil {
            return try executeMap(function: function, data: data, device: device, to: &output)
        }
        switch function {
        case 0x03:
            guard data.count == 4 else { throw .illegalDataValue("function 03 needs 4 data bytes, got \(data.count)") }
            try device.withRegisters(address: word(0), count: word(2)) { words in
                output.append(0x03)
                output.append(UInt8(words.count * 2))
                for w in words {
                    output.append(UInt8(w >> 8))
                    output.append(UInt8(w & 0xFF))
                }
            }
        case 0x06:
            guard data.count == 4 else { throw .illegalDataValue("function 06 needs 4 data bytes, got \(data.count)") }
            try device.writeRegisters(address: word(0), values: [UInt16(word(2))])
            output.append(0x06)
            output.append(contentsOf: data)
        case 0x10:
            guard data.count >= 5 else { throw .illegalDataValue("function 16 needs at least 5 data bytes") }
            let quantity = word(2)
            let byteCount = Int(data[4])
            guard (1...123).contains(quantity), byteCount == quantity * 2, data.count == 5 + byteCount else {
                throw .illegalDataValue("function 16 quantity \(quantity) does not match byte count \(byteCount)")
            }
            let values = (0..<quantity).map { UInt16(word(5 + $0 * 2)) }
            try device.writeRegisters(address: word(0), values: values)
            output.append(0x10)
            output.append(contentsOf: data.prefix(4))
        case 0x17:
            guard data.count >= 9 else { throw .illegalDataValue("function 23 needs at least 9 data bytes") }
            let (readCount, writeCount, byteCount) = (word(2), word(6), Int(data[8]))
            guard (1...125).contains(readCount), (1...121).contains(writeCount), byteCount == writeCount * 2,
                  data.count == 9 + byteCount else {
                throw .illegalDataValue("function 23 read quantity \(readCount), write quantity \(writeCount) and byte count \(byteCount) do not fit")
            }
            let values = (0..<writeCount).map { UInt16(word(9 + $0 * 2)) }
            let garble = device.faults.garbleFunction23
            try device.withWriteThenRead(writeAddress: word(4), values: values, readAddress: word(0), count: readCount) { words in
                output.append(0x17)
                output.append(UInt8(words.count * 2 - (garble ? 2 : 0)))
                for w in words {
                    output.append(UInt8(w >> 8))
                    output.append(UInt8(w & 0xFF))
                }
            }
        default:
            throw .illegalFunction("function \(function) is not supported")
        }
    }

    /// Functions 01–04 of a map-2 device, and writes of its coils and holding registers (05, 06, 15, 16).
    private static func executeMap(function: UInt8, data: UnsafeBufferPointer<UInt8>, device: SimulatedDevice,
                                   to output: inout [UInt8]) throws(ModbusException) {
        func word(_ i: Int) -> Int { Int(data[i]) << 8 | Int(data[i + 1]) }
        let table: ModbusTable
        switch function {
        case 0x05, 0x06:
            guard data.count == 4 else { throw .illegalDataValue("function \(function) needs 4 data bytes, got \(data.count)") }
            let value = word(2)
            if function == 0x05, value != 0xFF00, value != 0 {
                throw .illegalDataValue("function 05 takes 0xFF00 or 0x0000, got 0x\(String(value, radix: 16))")
            }
            try device.writeMap(function == 0x05 ? .coils : .holding, address: word(0),
                                values: [function == 0x05 ? (value == 0xFF00 ? 1 : 0) : UInt16(value)], function: function)
            output.append(function)
            output.append(contentsOf: data)
            return
        case 0x0F, 0x10:
            guard data.count >= 5 else { throw .illegalDataValue("function \(function) needs at least 5 data bytes") }
            let (quantity, byteCount) = (word(2), Int(data[4]))
            let expected = function == 0x0F ? (quantity + 7) / 8 : quantity * 2
            guard (1...(function == 0x0F ? 1968 : 123)).contains(quantity), byteCount == expected, data.count == 5 + byteCount else {
                throw .illegalDataValue("function \(function) quantity \(quantity) does not match byte count \(byteCount)")
            }
            let values: [UInt16] = function == 0x0F
                ? (0..<quantity).map { UInt16(data[5 + $0 / 8] >> UInt8($0 % 8) & 1) }
                : (0..<quantity).map { UInt16(word(5 + $0 * 2)) }
            try device.writeMap(function == 0x0F ? .coils : .holding, address: word(0), values: values, function: function)
            output.append(function)
            output.append(contentsOf: data.prefix(4))
            return
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
            output += [function, UInt8(bytes.count)] + bytes
            return
        }
        output.append(function)
        output.append(UInt8(values.count * 2))
        for w in values {
            output.append(UInt8(w >> 8))
            output.append(UInt8(w & 0xFF))
        }
    }
}

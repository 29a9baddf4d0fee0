/// Reads of the tables map-2 profiles use besides holding registers: input registers (04), coils (01) and
/// discrete inputs (02), through the same funnel (and the same reply checks) as every other request.
extension ModbusConnection {
    /// Reads `count` input registers at `address` from `unit` into `buffer` (function 04).
    public func readInputRegisters(unit: UInt8, address: UInt16, count: Int, into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError) {
        let reply = try exchange("modbus_read_input_registers", unit: unit, address: address, idempotent: true,
                                 request: [0x04, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)])
        for index in 0..<count {
            buffer[index] = UInt16(reply[reply.startIndex + 2 + 2 * index]) << 8 | UInt16(reply[reply.startIndex + 3 + 2 * index])
        }
    }

    /// Reads `count` registers at `address`: input registers (04) when `input`, else holding registers (03).
    public func readRegisters(unit: UInt8, address: UInt16, count: Int, input: Bool, into buffer: UnsafeMutablePointer<UInt16>) throws(ModbusError) {
        if input {
            try readInputRegisters(unit: unit, address: address, count: count, into: buffer)
        } else {
            try readRegisters(unit: unit, address: address, count: count, into: buffer)
        }
    }

    /// Reads `count` coils (function 01) or discrete inputs (function 02) at `address` into `bits`, one byte
    /// (0 or 1) per bit.
    public func readBits(unit: UInt8, address: UInt16, count: Int, discreteInputs: Bool, into bits: UnsafeMutablePointer<UInt8>) throws(ModbusError) {
        let function: UInt8 = discreteInputs ? 0x02 : 0x01
        let reply = try exchange(discreteInputs ? "modbus_read_input_bits" : "modbus_read_bits", unit: unit, address: address,
                                 idempotent: true,
                                 request: [function, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF)])
        for index in 0..<count {
            bits[index] = reply[reply.startIndex + 2 + index / 8] >> UInt8(index % 8) & 1
        }
    }

    /// Writes one coil (function 05: 0xFF00 on, 0x0000 off); the reply must echo the request.
    public func writeCoil(unit: UInt8, address: UInt16, on: Bool) throws(ModbusError) {
        _ = try exchange("modbus_write_bit", unit: unit, address: address,
                         request: [0x05, UInt8(address >> 8), UInt8(address & 0xFF), on ? 0xFF : 0, 0])
    }

    /// Writes consecutive coils with one request (function 15).
    public func writeCoils(unit: UInt8, address: UInt16, values: [Bool]) throws(ModbusError) {
        var packed = [UInt8](repeating: 0, count: (values.count + 7) / 8)
        for (index, on) in values.enumerated() where on { packed[index / 8] |= 1 << UInt8(index % 8) }
        let request: [UInt8] = [0x0F, UInt8(address >> 8), UInt8(address & 0xFF), UInt8(values.count >> 8),
                                UInt8(values.count & 0xFF), UInt8(packed.count)] + packed
        _ = try exchange("modbus_write_bits", unit: unit, address: address, request: request)
    }
}

// ModbusTransport

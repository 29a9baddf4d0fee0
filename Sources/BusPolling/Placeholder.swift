// BusPolling

// MQTTPublisher

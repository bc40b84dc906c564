"""Sensor readers: I2C, 1-Wire, Modbus, MQTT, shell command and file replay."""

"""MPU6886 accelerometer over I2C (the IMU of the M5StickC PLUS / PLUS 2), raw int16 readings."""

import struct
import time

_ADDRESS = 0x68
_SMPLRT_DIV = 0x19
_CONFIG = 0x1A
_ACCEL_CONFIG = 0x1C
_ACCEL_CONFIG2 = 0x1D
_ACCEL_XOUT_H = 0x3B
_PWR_MGMT_1 = 0x6B
_PWR_MGMT_2 = 0x6C
_WHO_AM_I = 0x75
_MPU6886_ID = 0x19

# full-scale range in g -> ACCEL_CONFIG bits; counts per g are 32768 / range
_RANGES = {2: 0x00, 4: 0x08, 8: 0x10, 16: 0x18}


class MPU6886:
    """Accelerometer readings as int16 counts (x, y, z); `range_g` 2, 4, 8 or 16."""

    n_axes = 3

    def __init__(self, i2c, address=_ADDRESS, range_g=2):
        if range_g not in _RANGES:
            raise ValueError("range_g must be one of 2, 4, 8, 16, got %r" % (range_g,))
        self.i2c = i2c
        self.address = address
        who = self._read(_WHO_AM_I, 1)[0]
        if who != _MPU6886_ID:
            raise OSError("no MPU6886 at I2C address 0x%02x: WHO_AM_I is 0x%02x, expected 0x%02x" % (address, who, _MPU6886_ID))
        self._write(_PWR_MGMT_1, 0x80)  # reset
        time.sleep_ms(10)
        self._write(_PWR_MGMT_1, 0x01)  # clock from the gyro PLL
        time.sleep_ms(10)
        self._write(_PWR_MGMT_2, 0x00)
        self._write(_ACCEL_CONFIG, _RANGES[range_g])
        self._write(_ACCEL_CONFIG2, 0x00)
        self._write(_CONFIG, 0x01)
        self._write(_SMPLRT_DIV, 0x00)
        self._buffer = bytearray(6)

    def _write(self, register, value):
        self.i2c.writeto_mem(self.address, register, bytes([value]))

    def _read(self, register, n):
        return self.i2c.readfrom_mem(self.address, register, n)

    def read_into(self, out, offset):
        """Writes x, y, z counts into out[offset:offset + 3]."""
        self.i2c.readfrom_mem_into(self.address, _ACCEL_XOUT_H, self._buffer)
        x, y, z = struct.unpack(">hhh", self._buffer)
        out[offset] = x
        out[offset + 1] = y
        out[offset + 2] = z

/* USBSerial `Serial` (device-os@v2.3.1 wiring/inc/spark_wiring_usbserial.h): USB CDC to the rig. */
#pragma once

#include "spark_wiring_print.h"

class USBSerial : public Stream {
public:
    void begin(long baud = 9600) { (void)baud; }
    void end() {}
    bool isConnected();
    explicit operator bool() { return isConnected(); }

    int available() override;
    int read() override;
    int peek() override;
    void flush() override {}
    size_t write(uint8_t c) override { return write(&c, 1); }
    size_t write(const uint8_t* buf, size_t len) override;
    using Print::write;

private:
    int fill();
    uint8_t rx_[64];
    int rxPos_ = 0;
    int rxLen_ = 0;
};

extern USBSerial Serial;

/* CellularClass `Cellular` (device-os@v2.3.1 wiring/inc/spark_wiring_cellular.h), modem control. */
#pragma once

class CellularClass {
public:
    void on();
    void off();
    bool ready();
    void connect(unsigned flags = 0);
    void disconnect();
};

extern CellularClass Cellular;

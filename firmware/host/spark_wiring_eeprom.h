/*
 * EEPROMClass `EEPROM` (device-os@v2.3.1 wiring/inc/spark_wiring_eeprom.h) over the emulated EEPROM
 * buffer owned by the simulator, so its content survives resets and reloads (2047 bytes on Electron).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

class EEPROMClass {
public:
    uint8_t read(int index) const;
    void write(int index, uint8_t value);
    void update(int index, uint8_t value) { write(index, value); }
    size_t length() const;
    void clear();
    bool hasPendingErase() const { return false; }
    void performPendingErase() {}

    template <typename T>
    T& get(int index, T& t) const {
        const uint8_t* base = data();
        if (index >= 0 && (size_t)index + sizeof(T) <= length() && base) {
            memcpy((void*)&t, base + index, sizeof(T));
        }
        return t;
    }
    template <typename T>
    const T& put(int index, const T& t) {
        uint8_t* base = data();
        if (index >= 0 && (size_t)index + sizeof(T) <= length() && base) {
            memcpy(base + index, (const void*)&t, sizeof(T));
        }
        return t;
    }

private:
    uint8_t* data() const;
};

extern EEPROMClass EEPROM;

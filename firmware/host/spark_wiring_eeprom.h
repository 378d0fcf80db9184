/*
 * EEPROMClass `EEPROM` (device-os@v2.3.1 wiring/inc/spark_wiring_eeprom.h). Reads come from the
 * simulator's view of the emulated EEPROM, each after the simulator has charged the CPU time of
 * Device OS's walk of the page's records (HAL_EEPROM_Get; docs/reference/particle-ota.md §2.10
 * "How long a read takes"); every write is a HAL_EEPROM_Put the simulator turns into flash records
 * with their timing, so a power cut can land inside it (2047 bytes on Electron).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

class EEPROMClass {
public:
    uint8_t read(int index) const;
    void write(int index, uint8_t value) { putBytes(index, &value, 1); }
    void update(int index, uint8_t value) { write(index, value); }
    size_t length() const;
    void clear();
    bool hasPendingErase() const { return false; }
    void performPendingErase() {}

    template <typename T>
    T& get(int index, T& t) const {
        const uint8_t* base = walkPage(index, sizeof(T));
        if (index >= 0 && (size_t)index + sizeof(T) <= length() && base) {
            memcpy((void*)&t, base + index, sizeof(T));
        }
        return t;
    }
    template <typename T>
    const T& put(int index, const T& t) {
        putBytes(index, (const uint8_t*)&t, sizeof(T));
        return t;
    }

private:
    uint8_t* data() const;
    /** HAL_EEPROM_Get's walk of the page (it takes virtual time), then the bytes to read. */
    const uint8_t* walkPage(int index, size_t len) const;
    void putBytes(int index, const uint8_t* bytes, size_t len);
};

extern EEPROMClass EEPROM;

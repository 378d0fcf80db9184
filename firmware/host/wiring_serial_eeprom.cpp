/*
 * USB serial and EEPROM for the host build. Serial carries the protocol of docs/protocol.md to the
 * simulator's pty; EEPROM is the simulator-owned buffer, so it outlives resets and reloads.
 */
#include "Particle.h"

USBSerial Serial;
EEPROMClass EEPROM;

namespace {
const size_t kElectronEepromLength = 2047;  // EEPROM.length() on Electron
uint8_t g_fallback_eeprom[kElectronEepromLength];
bool g_fallback_init = false;
}  // namespace

// --- USBSerial --------------------------------------------------------------------------

bool USBSerial::isConnected() {
    return otarig::api().serial(OTARIG_SERIAL_IS_CONNECTED, nullptr, 0) > 0;
}

size_t USBSerial::write(const uint8_t* buf, size_t len) {
    if (!buf || !len) return 0;
    // One call per buffer: a protocol line reaches the simulator in one piece.
    int rc = otarig::api().serial(OTARIG_SERIAL_WRITE, const_cast<uint8_t*>(buf), (int)len);
    return rc > 0 ? (size_t)rc : 0;
}

int USBSerial::fill() {
    if (rxPos_ < rxLen_) return rxLen_ - rxPos_;
    rxPos_ = rxLen_ = 0;
    int rc = otarig::api().serial(OTARIG_SERIAL_READ, rx_, (int)sizeof(rx_));
    if (rc > 0) rxLen_ = rc > (int)sizeof(rx_) ? (int)sizeof(rx_) : rc;
    return rxLen_;
}

int USBSerial::available() {
    int buffered = rxLen_ - rxPos_;
    int pending = otarig::api().serial(OTARIG_SERIAL_AVAILABLE, nullptr, 0);
    return buffered + (pending > 0 ? pending : 0);
}

int USBSerial::read() {
    if (fill() <= 0) return -1;
    return rx_[rxPos_++];
}

int USBSerial::peek() {
    if (fill() <= 0) return -1;
    return rx_[rxPos_];
}

// --- EEPROMClass ------------------------------------------------------------------------

uint8_t* EEPROMClass::data() const {
    const auto& a = otarig::api();
    if (a.eeprom && a.eeprom_len) return a.eeprom;
    if (!g_fallback_init) {
        memset(g_fallback_eeprom, 0xFF, sizeof(g_fallback_eeprom));  // erased flash reads 0xFF
        g_fallback_init = true;
    }
    return g_fallback_eeprom;
}

size_t EEPROMClass::length() const {
    const auto& a = otarig::api();
    return (a.eeprom && a.eeprom_len) ? a.eeprom_len : kElectronEepromLength;
}

const uint8_t* EEPROMClass::walkPage(int index, size_t len) const {
    const auto& a = otarig::api();
    if (a.eeprom_get && a.eeprom_get(index, (int)len) != 0) throw otarig::AppTerminated();
    return data();
}

uint8_t EEPROMClass::read(int index) const {
    const uint8_t* base = walkPage(index, 1);  // HAL_EEPROM_Read: a get of one byte
    if (index < 0 || (size_t)index >= length()) return 0xFF;
    return base[index];
}

void EEPROMClass::putBytes(int index, const uint8_t* bytes, size_t len) {
    if (index < 0 || (size_t)index + len > length() || !bytes) return;
    const auto& a = otarig::api();
    if (!a.eeprom_put) {
        memcpy(data() + index, bytes, len);
        return;
    }
    if (a.eeprom_put(index, bytes, (int)len) != 0) throw otarig::AppTerminated();
}

void EEPROMClass::clear() {
    const auto& a = otarig::api();
    if (!a.eeprom_put) {
        memset(data(), 0xFF, length());
        return;
    }
    if (a.eeprom_put(-1, nullptr, 0) != 0) throw otarig::AppTerminated();
}

/*
 * Sleep configuration and result (device-os@v2.3.1 system/inc/system_sleep_configuration.h,
 * hal/inc/sleep_hal.h): same names and enum values; the host version records the request in
 * plain fields, which the host layer hands to the simulator as an otarig_sleep_request
 * (docs/reference/particle-ota.md §3.2).
 */
#pragma once

#include <chrono>
#include <stdint.h>
#include "core_hal.h"

typedef enum network_interface_index {
    NETWORK_INTERFACE_ALL = 0,
    NETWORK_INTERFACE_LOOPBACK = 1,
    NETWORK_INTERFACE_MESH = 2,
    NETWORK_INTERFACE_ETHERNET = 3,
    NETWORK_INTERFACE_CELLULAR = 4,
} network_interface_index;
typedef network_interface_index network_interface_t;

enum class SystemSleepMode : uint8_t {
    NONE = 0,
    STOP = 1,
    ULTRA_LOW_POWER = 2,
    HIBERNATE = 3,
};

enum class SystemSleepWakeupReason : uint16_t {
    UNKNOWN = 0,
    BY_GPIO = 1,
    BY_ADC = 2,
    BY_DAC = 3,
    BY_RTC = 4,
    BY_LPCOMP = 5,
    BY_USART = 6,
    BY_I2C = 7,
    BY_SPI = 8,
    BY_TIMER = 9,
    BY_CAN = 10,
    BY_USB = 11,
    BY_BLE = 12,
    BY_NFC = 13,
    BY_NETWORK = 14,
};

enum class SystemSleepNetworkFlag : uint16_t {
    NONE = 0,
    INACTIVE_STANDBY = 1,
};

inline SystemSleepNetworkFlag operator|(SystemSleepNetworkFlag a, SystemSleepNetworkFlag b) {
    return static_cast<SystemSleepNetworkFlag>(static_cast<uint16_t>(a) | static_cast<uint16_t>(b));
}

class SystemSleepConfiguration {
public:
    SystemSleepConfiguration() = default;

    SystemSleepConfiguration& mode(SystemSleepMode m) { mode_ = m; return *this; }
    SystemSleepConfiguration& duration(uint32_t ms) { durationMs_ = ms; return *this; }
    SystemSleepConfiguration& duration(std::chrono::milliseconds ms) { return duration((uint32_t)ms.count()); }
    SystemSleepConfiguration& gpio(pin_t pin, InterruptMode m) { gpioPin_ = pin; gpioMode_ = m; hasGpio_ = true; return *this; }
    SystemSleepConfiguration& network(network_interface_t netif,
                                      SystemSleepNetworkFlag flags = SystemSleepNetworkFlag::NONE) {
        if (netif == NETWORK_INTERFACE_CELLULAR || netif == NETWORK_INTERFACE_ALL) {
            hasNetwork_ = true;
            networkFlags_ = static_cast<uint16_t>(networkFlags_ | static_cast<uint16_t>(flags));
        }
        return *this;
    }

    bool valid() const { return mode_ != SystemSleepMode::NONE; }
    SystemSleepMode sleepMode() const { return mode_; }
    uint32_t durationMs() const { return durationMs_; }
    bool hasGpio() const { return hasGpio_; }
    pin_t gpioPin() const { return gpioPin_; }
    InterruptMode gpioMode() const { return gpioMode_; }
    bool hasNetwork() const { return hasNetwork_; }
    uint16_t networkFlags() const { return networkFlags_; }

private:
    SystemSleepMode mode_ = SystemSleepMode::NONE;
    uint32_t durationMs_ = 0;
    bool hasGpio_ = false;
    pin_t gpioPin_ = 0;
    InterruptMode gpioMode_ = RISING;
    bool hasNetwork_ = false;
    uint16_t networkFlags_ = 0;
};

class SystemSleepResult {
public:
    SystemSleepResult() = default;
    SystemSleepResult(SystemSleepWakeupReason reason, pin_t pin, int error = 0)
        : reason_(reason), pin_(pin), error_(error) {}

    SystemSleepWakeupReason wakeupReason() const { return reason_; }
    pin_t wakeupPin() const { return reason_ == SystemSleepWakeupReason::BY_GPIO ? pin_ : (pin_t)0xFFFF; }
    int error() const { return error_; }

private:
    SystemSleepWakeupReason reason_ = SystemSleepWakeupReason::UNKNOWN;
    pin_t pin_ = 0xFFFF;
    int error_ = 0;
};

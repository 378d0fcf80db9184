/*
 * Reset reasons, values of device-os@v2.3.1 hal/inc/core_hal.h (docs/dev/architecture.md), pins,
 * pin/interrupt modes and feature states used by the wiring API.
 */
#pragma once

#include <stdint.h>

#ifndef PLATFORM_ID
#define PLATFORM_ID 10  // Electron
#endif
#define PLATFORM_ELECTRON_PRODUCTION 10

typedef enum System_Reset_Reason {
    RESET_REASON_NONE = 0,
    RESET_REASON_UNKNOWN = 10,
    RESET_REASON_PIN_RESET = 20,
    RESET_REASON_POWER_MANAGEMENT = 30,
    RESET_REASON_POWER_DOWN = 40,
    RESET_REASON_POWER_BROWNOUT = 50,
    RESET_REASON_WATCHDOG = 60,
    RESET_REASON_UPDATE = 70,
    RESET_REASON_UPDATE_ERROR = 80,
    RESET_REASON_UPDATE_TIMEOUT = 90,
    RESET_REASON_FACTORY_RESET = 100,
    RESET_REASON_SAFE_MODE = 110,
    RESET_REASON_DFU_MODE = 120,
    RESET_REASON_PANIC = 130,
    RESET_REASON_USER = 140
} System_Reset_Reason;

typedef uint16_t pin_t;

// Electron pin map (D0-D7, A0-A7; WKP = A7)
enum : pin_t {
    D0 = 0, D1 = 1, D2 = 2, D3 = 3, D4 = 4, D5 = 5, D6 = 6, D7 = 7,
    A0 = 10, A1 = 11, A2 = 12, A3 = 13, A4 = 14, A5 = 15, A6 = 16, A7 = 17,
    DAC = A6, WKP = A7, RX = 18, TX = 19,
    B0 = 24, B1 = 25, B2 = 26, B3 = 27, B4 = 28, B5 = 29,
    C0 = 30, C1 = 31, C2 = 32, C3 = 33, C4 = 34, C5 = 35,
};

typedef enum PinMode { INPUT = 0, OUTPUT = 1, INPUT_PULLUP = 2, INPUT_PULLDOWN = 3, PIN_MODE_NONE = 0xFF } PinMode;
typedef enum InterruptMode { CHANGE = 0, RISING = 1, FALLING = 2 } InterruptMode;

#define LOW 0
#define HIGH 1

namespace spark {
namespace feature {
enum State { DISABLED, ENABLED };
}  // namespace feature
}  // namespace spark

void system_thread_set_state(spark::feature::State state, void* reserved);

// Forwarded to the simulator's pin model (wiring_gpio.cpp, bridge `gpio` callback).
void pinMode(pin_t pin, PinMode mode);
void digitalWrite(pin_t pin, uint8_t value);
int32_t digitalRead(pin_t pin);

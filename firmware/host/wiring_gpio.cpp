/*
 * GPIO for the host build (device-os@v2.3.1 wiring/src/spark_wiring.cpp): pinMode, digitalWrite
 * and digitalRead forward to the bridge `gpio` callback (ABI 2), so that the simulated bench sees
 * the levels the firmware drives (the download status line, docs/protocol.md). The Device OS
 * rules about modes (a write to an unconfigured pin is ignored) live in the simulator with the pin
 * state (otarig.sim.electron_pins). Not a switching call: never suspends, never aborts.
 */
#include "Particle.h"

void pinMode(pin_t pin, PinMode mode) { otarig::api().gpio(OTARIG_GPIO_MODE, (int)pin, (int)mode); }

void digitalWrite(pin_t pin, uint8_t value) {
    otarig::api().gpio(OTARIG_GPIO_WRITE, (int)pin, value ? HIGH : LOW);
}

int32_t digitalRead(pin_t pin) { return otarig::api().gpio(OTARIG_GPIO_READ, (int)pin, 0) ? HIGH : LOW; }

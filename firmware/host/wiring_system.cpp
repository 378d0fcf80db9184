/*
 * System, time and sleep for the host build: each call forwards to the simulator's Device OS
 * model (docs/reference/particle-ota.md §2.1 flags, §2.5 reset, §3.2 sleep). Switching calls throw
 * otarig::AppTerminated when the simulator reports that the app was terminated.
 */
#include "Particle.h"
#include "otarig_registry.h"

namespace otarig {

int sys(int op, int arg) { return checked(api().system(op, arg)); }
int sys_raw(int op, int arg) { return api().system(op, arg); }

void cloud_process_once() {
    Particle.process();
    delay(1);
}

}  // namespace otarig

SystemClass System;

// --- time -------------------------------------------------------------------------------

system_tick_t millis(void) { return otarig::api().millis(); }

unsigned long micros(void) { return (unsigned long)otarig::api().millis() * 1000ul; }

void delay(unsigned long ms) {
    if (otarig::api().delay((uint32_t)ms) != 0) throw otarig::AppTerminated();
}

void delayMicroseconds(unsigned int) {
    // Sub-millisecond busy waits take no virtual time.
}

// --- SystemClass ------------------------------------------------------------------------

SystemClass::SystemClass(System_Mode_TypeDef mode) {
    if (mode != DEFAULT) otarig::set_config(OTARIG_CONFIG_SYSTEM_MODE, mode);
}

System_Mode_TypeDef SystemClass::mode(void) {
    return (System_Mode_TypeDef)otarig_config(OTARIG_CONFIG_SYSTEM_MODE);
}

namespace {
bool add_handler(system_event_t events, otarig::HandlerKind kind, void* fn) {
    if (!fn) return false;
    otarig::registry().systemHandlers.push_back({events, kind, fn});
    return true;
}
void remove_handler(system_event_t events, void* fn) {
    auto& hs = otarig::registry().systemHandlers;
    for (auto it = hs.begin(); it != hs.end();) {
        if (it->fn == fn) {
            it->mask &= ~events;
            if (!it->mask) {
                it = hs.erase(it);
                continue;
            }
        }
        ++it;
    }
}
}  // namespace

bool SystemClass::on(system_event_t events, void (*handler)(system_event_t, int, void*)) {
    return add_handler(events, otarig::HandlerKind::FULL, reinterpret_cast<void*>(handler));
}
bool SystemClass::on(system_event_t events, void (*handler)(system_event_t, int)) {
    return add_handler(events, otarig::HandlerKind::EVENT_PARAM, reinterpret_cast<void*>(handler));
}
bool SystemClass::on(system_event_t events, void (*handler)(system_event_t)) {
    return add_handler(events, otarig::HandlerKind::EVENT_ONLY, reinterpret_cast<void*>(handler));
}
bool SystemClass::on(system_event_t events, void (*handler)()) {
    return add_handler(events, otarig::HandlerKind::NO_ARGS, reinterpret_cast<void*>(handler));
}
void SystemClass::off(void (*handler)(system_event_t, int, void*)) {
    remove_handler(all_events, reinterpret_cast<void*>(handler));
}
void SystemClass::off(system_event_t events, void (*handler)(system_event_t, int, void*)) {
    remove_handler(events, reinterpret_cast<void*>(handler));
}

void SystemClass::reset(void) { reset(0); }

void SystemClass::reset(uint32_t data) {
    // The reset always ends the app, whatever the callback answers.
    otarig::api().system(OTARIG_SYS_RESET, (int)data);
    throw otarig::AppTerminated();
}

int SystemClass::resetReason(void) { return otarig::sys(OTARIG_SYS_RESET_REASON); }
uint32_t SystemClass::resetReasonData(void) { return (uint32_t)otarig::sys_raw(OTARIG_SYS_RESET_REASON_DATA); }
uint32_t SystemClass::freeMemory() { return (uint32_t)otarig::sys_raw(OTARIG_SYS_FREE_MEMORY); }

uint64_t SystemClass::millis() {
    // 64-bit uptime from the 32-bit tick, extended across wraps.
    static uint32_t last = 0;
    static uint64_t high = 0;
    uint32_t now = ::millis();
    if (now < last) high += (1ull << 32);
    last = now;
    return high | now;
}

String SystemClass::version() {
    uint32_t v = versionNumber();
    return String::format("%u.%u.%u", (unsigned)(v >> 24) & 0xff, (unsigned)(v >> 16) & 0xff,
                          (unsigned)(v >> 8) & 0xff);
}

uint32_t SystemClass::versionNumber() { return (uint32_t)otarig::sys_raw(OTARIG_SYS_VERSION_NUMBER); }

void SystemClass::enableUpdates() { otarig::sys(OTARIG_SYS_ENABLE_UPDATES); }
void SystemClass::disableUpdates() { otarig::sys(OTARIG_SYS_DISABLE_UPDATES); }
bool SystemClass::updatesPending() { return otarig::sys(OTARIG_SYS_UPDATES_PENDING) != 0; }
bool SystemClass::updatesEnabled() { return otarig::sys(OTARIG_SYS_UPDATES_ENABLED) != 0; }
bool SystemClass::updatesForced() { return otarig::sys(OTARIG_SYS_UPDATES_FORCED) != 0; }
void SystemClass::enableReset() { otarig::sys(OTARIG_SYS_ENABLE_RESET); }
void SystemClass::disableReset() { otarig::sys(OTARIG_SYS_DISABLE_RESET); }
bool SystemClass::resetEnabled() { return otarig::sys(OTARIG_SYS_RESET_ENABLED) != 0; }
bool SystemClass::resetPending() { return otarig::sys(OTARIG_SYS_RESET_PENDING) != 0; }

SystemSleepResult SystemClass::sleep(const SystemSleepConfiguration& config) {
    if (!config.valid()) {
        return SystemSleepResult(SystemSleepWakeupReason::UNKNOWN, 0xFFFF, -1);
    }
    otarig_sleep_request req;
    memset(&req, 0, sizeof(req));
    req.mode = static_cast<uint8_t>(config.sleepMode());
    req.duration_ms = config.durationMs();
    req.wake_gpio = config.hasGpio() ? (uint8_t)config.gpioPin() : 0;
    req.wake_network = config.hasNetwork() ? 1 : 0;
    req.network_flags = (uint8_t)(config.networkFlags() & 0x1);
    // docs/reference/particle-ota.md §3.2: HIBERNATE resets (the callback reports abort); STOP/ULP return the wake reason.
    int rc = otarig::checked(otarig::api().sleep(&req));
    return SystemSleepResult(static_cast<SystemSleepWakeupReason>(rc), config.hasGpio() ? config.gpioPin() : 0xFFFF);
}

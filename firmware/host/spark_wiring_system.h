/*
 * SystemClass (device-os@v2.3.1 wiring/inc/spark_wiring_system.h): OTA/reset flags, events,
 * sleep, reset, versions. Behaviour lives in the simulator (docs/reference/particle-ota.md §2.1, §2.5, §3.2).
 */
#pragma once

#include <stdint.h>
#include "core_hal.h"
#include "spark_wiring_string.h"
#include "spark_wiring_ticks.h"
#include "system_event.h"
#include "system_mode.h"
#include "system_sleep_configuration.h"

#define SYSTEM_VERSION_v231 0x02030100
#ifndef SYSTEM_VERSION
#define SYSTEM_VERSION SYSTEM_VERSION_v231
#endif

namespace otarig {
void cloud_process_once();  // Particle.process() plus a 1 ms pause, for waitFor/waitUntil
}

class SystemClass {
public:
    /** SYSTEM_MODE(x) constructs one of these; DEFAULT leaves the mode as is (AUTOMATIC). */
    SystemClass(System_Mode_TypeDef mode = DEFAULT);

    static System_Mode_TypeDef mode(void);

    // docs/reference/particle-ota.md §2.2: handlers run for every event bit in `events`.
    static bool on(system_event_t events, void (*handler)(system_event_t, int, void*));
    static bool on(system_event_t events, void (*handler)(system_event_t, int));
    static bool on(system_event_t events, void (*handler)(system_event_t));
    static bool on(system_event_t events, void (*handler)());
    static void off(void (*handler)(system_event_t, int, void*));
    static void off(system_event_t events, void (*handler)(system_event_t, int, void*));

    static void reset(void) __attribute__((noreturn));
    static void reset(uint32_t data) __attribute__((noreturn));
    static int resetReason(void);
    static uint32_t resetReasonData(void);

    static SystemSleepResult sleep(const SystemSleepConfiguration& config);

    static uint32_t freeMemory();
    static uint64_t millis();
    static unsigned uptime() { return (unsigned)(millis() / 1000); }

    String version();
    uint32_t versionNumber();

    // docs/reference/particle-ota.md §2.1: flags live in the simulator's Device OS model.
    void enableUpdates();
    void disableUpdates();
    bool updatesPending();
    bool updatesEnabled();
    bool updatesForced();
    void enableReset();
    void disableReset();
    bool resetEnabled();
    bool resetPending();

    template <typename Condition, typename While>
    static bool waitConditionWhile(Condition condition, While whileFn) {
        while (whileFn() && !condition()) {
            otarig::cloud_process_once();
        }
        return condition();
    }
    template <typename Condition>
    static bool waitCondition(Condition condition) {
        return waitConditionWhile(condition, [] { return true; });
    }
    template <typename Condition>
    static bool waitCondition(Condition condition, system_tick_t timeout) {
        const system_tick_t start = ::millis();
        return waitConditionWhile(condition, [=] { return (system_tick_t)(::millis() - start) < timeout; });
    }
};

extern SystemClass System;

#define waitFor(condition, timeout) System.waitCondition([] { return (condition)(); }, (timeout))
#define waitUntil(condition) System.waitCondition([] { return (condition)(); })

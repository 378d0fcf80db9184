/*
 * Device OS 2.3.1 API subset for the host build of otarig companion firmware (docs/design.md
 * principle 2). Same names, signatures and constant values as Device OS 2.3.1; every call is
 * forwarded to the simulator through the otarig_host_api callbacks (otarig_host.h).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <chrono>

#include "otarig_host.h"
#include "otarig_internal.h"
#include "core_hal.h"
#include "system_mode.h"
#include "system_event.h"
#include "system_sleep_configuration.h"
#include "spark_wiring_ticks.h"
#include "spark_wiring_string.h"
#include "spark_wiring_print.h"
#include "spark_wiring_usbserial.h"
#include "spark_wiring_system.h"
#include "spark_wiring_cloud.h"
#include "spark_wiring_cellular.h"
#include "spark_wiring_eeprom.h"


void setup();
void loop();

#define OTARIG_CAT2_(a, b) a##b
#define OTARIG_CAT_(a, b) OTARIG_CAT2_(a, b)

/** Code run during static initialisation, before setup() (Device OS STARTUP). */
#define STARTUP(code)                                                                      \
    namespace {                                                                            \
    struct OTARIG_CAT_(otarig_startup_, __LINE__) {                                        \
        OTARIG_CAT_(otarig_startup_, __LINE__)() { code; }                                 \
    } OTARIG_CAT_(otarig_startup_inst_, __LINE__) __attribute__((init_priority(101)));     \
    }

#define SYSTEM_MODE(mode) SystemClass SystemMode(mode)
#define SYSTEM_THREAD(state) STARTUP(system_thread_set_state(spark::feature::state, NULL))

/* The rig builds one project at its logical versions 1, 2, 3 and for the bench's product
 * (src/otarig/sim/build.py passes -DOTARIG_PRODUCT_VERSION=N and -DOTARIG_PRODUCT_ID=P): when
 * given, they win over the values in the source, but only through these macros, so a team's
 * firmware needs no edits and one without PRODUCT_VERSION(x) still carries no version
 * (docs/your-firmware.md). Without them the source's values stand, as on Device OS. */
#ifdef OTARIG_PRODUCT_ID
#define PRODUCT_ID(x) static ::otarig::ConfigSetter otarig_product_id_(OTARIG_CONFIG_PRODUCT_ID, (int)(OTARIG_PRODUCT_ID))
#else
#define PRODUCT_ID(x) static ::otarig::ConfigSetter otarig_product_id_(OTARIG_CONFIG_PRODUCT_ID, (int)(x))
#endif
/* As on Device OS 2.3.1 (wiring/inc/spark_wiring_version.h:48), PRODUCT_VERSION(x) is what puts the
 * version in the module: a uint16_t __system_product_version in the section .modinfo.product_version,
 * which the image maker reads from the host build (src/otarig/sim/build.py declared_product_version)
 * as the Device OS linker copies it into the module info (build/arm/linker/module_end.ld:8). A
 * firmware without the macro carries none. The setter reads the variable, which keeps its section
 * past --gc-sections; the test agent reads it too (weak), to report only what the module carries. */
#ifdef OTARIG_PRODUCT_VERSION
#define OTARIG_PRODUCT_VERSION_VALUE_(x) (OTARIG_PRODUCT_VERSION)
#else
#define OTARIG_PRODUCT_VERSION_VALUE_(x) (x)
#endif
#define PRODUCT_VERSION(x)                                                                          \
    __attribute__((used, section(".modinfo.product_version"))) uint16_t __system_product_version = \
        (uint16_t)OTARIG_PRODUCT_VERSION_VALUE_(x);                                                 \
    static ::otarig::ConfigSetter otarig_product_version_(OTARIG_CONFIG_PRODUCT_VERSION, (int)__system_product_version)

/** Survives resets (not power loss): the simulator copies this section across reloads. */
#define retained __attribute__((section("retained_user")))

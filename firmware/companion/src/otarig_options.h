/*
 * The companion's build options, in one place (firmware/companion/README.md "Build options").
 *
 * Where a value comes from, first match wins:
 *  1. a compiler flag `-DNAME=value` (the host build, src/otarig/sim/build.py);
 *  2. `otarig_build_config.h` beside this file, when it exists: a generated header, because
 *     `particle compile electron` and the Device OS makefiles take no -D for the app
 *     (tools/electron/build-variants.sh writes one per variant into a copy of the project; it is
 *     never committed, see ../.gitignore);
 *  3. the defaults below.
 * Every translation unit that reads an option includes this header before using it.
 */
#pragma once

#if defined(__has_include)
#if __has_include("otarig_build_config.h")
#include "otarig_build_config.h"
#endif
#endif

#ifndef OTARIG_PRODUCT_ID
#define OTARIG_PRODUCT_ID 4242  // PRODUCT_ID(...)
#endif

#ifndef COMPANION_VERSION
#define COMPANION_VERSION 1  // PRODUCT_VERSION(...) and the `version` cloud variable
#endif

#ifndef OTARIG_THREADED
#define OTARIG_THREADED 1  // SYSTEM_THREAD(ENABLED) when 1
#endif

#ifndef OTARIG_SYSTEM_MODE
#define OTARIG_SYSTEM_MODE SEMI_AUTOMATIC  // or AUTOMATIC / MANUAL (docs/reference/particle-ota.md §3.1 / §7.2 boot paths)
#endif

#ifndef OTARIG_HANDSHAKE_INTERVAL_MS
#define OTARIG_HANDSHAKE_INTERVAL_MS (24ul * 60ul * 60ul * 1000ul)  // forced handshake once a day
#endif

#ifndef OTARIG_STATUS_PIN
#define OTARIG_STATUS_PIN D6  // the bench's `status` input (firmware/bench/bench_pins.json)
#endif

#ifndef OTARIG_STATUS_PULSE_US
#define OTARIG_STATUS_PULSE_US 10  // LOW pulse width: long enough for the tester's edge detector
#endif

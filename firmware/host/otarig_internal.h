/*
 * Host-layer internals shared by the host .cpp files: access to the bound callbacks and the
 * abort rule (docs/dev/architecture.md "Execution model": a switching callback that reports
 * abort makes the host layer throw otarig::AppTerminated, caught by otarig_run()).
 */
#pragma once

#include <stdint.h>
#include "otarig_host.h"

namespace otarig {

/** Thrown when the simulator terminated the app (reset, power cut, HIBERNATE). */
struct AppTerminated {};

/** The bound callbacks; never null (unbound calls use inert defaults). */
const otarig_host_api& api();

/** Throw AppTerminated when a switching callback reported abort (negative result). */
inline int checked(int rc) {
    if (rc < 0) {
        throw AppTerminated();
    }
    return rc;
}

int sys(int op, int arg = 0);               // OTARIG_SYS_*, negative -> throw
int sys_raw(int op, int arg = 0);           // OTARIG_SYS_*, value passed through unchecked
int cloud(int op, const char* a = nullptr, const char* b = nullptr, int flags = 0);

/** Build-time configuration recorded by SYSTEM_MODE/SYSTEM_THREAD/PRODUCT_ID/PRODUCT_VERSION. */
void set_config(int key, int value);

struct ConfigSetter {
    ConfigSetter(int key, int value) { set_config(key, value); }
};

}  // namespace otarig

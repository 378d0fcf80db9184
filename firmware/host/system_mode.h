/* System modes, values of device-os@v2.3.1 system/inc/system_mode.h (docs/reference/particle-ota.md §3.1). */
#pragma once

typedef enum {
    DEFAULT = 0,
    AUTOMATIC = 1,
    SEMI_AUTOMATIC = 2,
    MANUAL = 3,
    SAFE_MODE = 4,
} System_Mode_TypeDef;

"""Device OS 2.3.1 constants the simulator shares with the firmware host layer.

Values from device-os@v2.3.1: `system/inc/system_event.h` (docs/reference/particle-ota.md §2.2), `hal/inc/core_hal.h`
(reset reasons), `system/inc/system_mode.h`, `hal/inc/sleep_hal.h` / `system_sleep_configuration.h`.
"""
from __future__ import annotations

# system_event.h
CLOUD_STATUS = 1 << 6
FIRMWARE_UPDATE = 1 << 8
FIRMWARE_UPDATE_PENDING = 1 << 9
RESET_PENDING = 1 << 10
RESET = 1 << 11
TIME_CHANGED = 1 << 14

FIRMWARE_UPDATE_BEGIN = 0
FIRMWARE_UPDATE_COMPLETE = 1
FIRMWARE_UPDATE_PROGRESS = 2
FIRMWARE_UPDATE_FAILED = -1  # (uint32_t)-1 as int

CLOUD_STATUS_DISCONNECTED = 0
CLOUD_STATUS_CONNECTING = 1
CLOUD_STATUS_HANDSHAKE = 2
CLOUD_STATUS_SESSION_RESUME = 3
CLOUD_STATUS_CONNECTED = 8
CLOUD_STATUS_DISCONNECTING = 9

# core_hal.h System_Reset_Reason
RESET_REASON = {
    "none": 0, "unknown": 10, "pin_reset": 20, "power_management": 30, "power_down": 40,
    "power_brownout": 50, "watchdog": 60, "update": 70, "update_error": 80, "update_timeout": 90,
    "factory_reset": 100, "safe_mode": 110, "dfu_mode": 120, "panic": 130, "user": 140,
}
RESET_REASON_NAME = {v: k for k, v in RESET_REASON.items()}

# system_mode.h System_Mode_TypeDef
SYSTEM_MODE_NAME = {0: "DEFAULT", 1: "AUTOMATIC", 2: "SEMI_AUTOMATIC", 3: "MANUAL", 4: "SAFE_MODE"}
AUTOMATIC, SEMI_AUTOMATIC, MANUAL = 1, 2, 3

# SystemSleepMode
SLEEP_NONE, SLEEP_STOP, SLEEP_ULTRA_LOW_POWER, SLEEP_HIBERNATE = 0, 1, 2, 3
SLEEP_MODE_NAME = {1: "STOP", 2: "ULTRA_LOW_POWER", 3: "HIBERNATE"}
SLEEP_NETWORK_FLAG_INACTIVE_STANDBY = 0x01

# SystemSleepWakeupReason (hal sleep_hal.h hal_wakeup_source_type_t)
WAKEUP_UNKNOWN = 0
WAKEUP_BY_GPIO = 1
WAKEUP_BY_RTC = 4
WAKEUP_BY_NETWORK = 14

# core_hal.h: Electron pin numbers (WKP = A7) and PinMode
D6 = 6
A7 = WKP = 17
INPUT, OUTPUT, INPUT_PULLUP, INPUT_PULLDOWN, PIN_MODE_NONE = 0, 1, 2, 3, 0xFF

#: Device OS 2.3.1 as System.versionNumber() reports it (0xAABBCCDD: major, minor, patch, rc).
SYSTEM_VERSION_NUMBER = 0x02030100
#: system-part module version of Device OS 2.3.1 (module_info.module_version; see otarig.firmware).
from ..firmware import DEVICE_OS_2_3_1_MODULE_VERSION as SYSTEM_MODULE_VERSION  # noqa: E402

# bridge op codes (docs/dev/architecture.md)
SYS_ENABLE_UPDATES, SYS_DISABLE_UPDATES, SYS_UPDATES_ENABLED, SYS_UPDATES_PENDING, SYS_UPDATES_FORCED = 1, 2, 3, 4, 5
SYS_ENABLE_RESET, SYS_DISABLE_RESET, SYS_RESET_ENABLED, SYS_RESET_PENDING = 6, 7, 8, 9
SYS_RESET, SYS_RESET_REASON, SYS_RESET_REASON_DATA, SYS_VERSION_NUMBER, SYS_FREE_MEMORY = 10, 11, 12, 13, 14
SYS_CELLULAR_ON, SYS_CELLULAR_OFF, SYS_CELLULAR_READY, SYS_CELLULAR_CONNECT, SYS_CELLULAR_DISCONNECT = 20, 21, 22, 23, 24
CLOUD_CONNECT, CLOUD_DISCONNECT, CLOUD_CONNECTED, CLOUD_PUBLISH, CLOUD_PROCESS = 1, 2, 3, 4, 5
CLOUD_SUBSCRIBED, CLOUD_FUNCTION, CLOUD_VARIABLE, CLOUD_CONNECTING = 6, 7, 8, 9
#: the longest cloud variable or function name Device OS takes, in bytes (USER_VAR_KEY_LENGTH =
#: USER_FUNC_KEY_LENGTH = 64, device-os v2.3.1 system/inc/system_cloud.h:380-381)
USER_KEY_LENGTH = 64
SERIAL_WRITE, SERIAL_READ, SERIAL_AVAILABLE, SERIAL_IS_CONNECTED = 0, 1, 2, 3
GPIO_MODE, GPIO_WRITE, GPIO_READ = 0, 1, 2

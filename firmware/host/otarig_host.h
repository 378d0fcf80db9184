/*
 * otarig bridge ABI, version 4 (docs/dev/architecture.md "Bridge ABI"; 2 added `gpio`, 3 `eeprom_put`,
 * 4 `eeprom_get`).
 *
 * The companion firmware is compiled for the host into a shared library. The simulator (Python,
 * ctypes) installs these callbacks with otarig_bind() and runs the app with otarig_run(). Every
 * Device OS API call of the host layer (firmware/host/) forwards to one of them. This header is
 * plain C so that it is the single description of the boundary on both sides.
 */
#ifndef OTARIG_HOST_H
#define OTARIG_HOST_H

#include <stdint.h>

#define OTARIG_ABI_VERSION 4

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define OTARIG_EXPORT __attribute__((visibility("default")))
#else
#define OTARIG_EXPORT
#endif

/* Sleep request passed to the `sleep` callback (built from SystemSleepConfiguration). */
typedef struct otarig_sleep_request {
    uint8_t  mode;          /* SystemSleepMode: 0 NONE, 1 STOP, 2 ULTRA_LOW_POWER, 3 HIBERNATE */
    uint32_t duration_ms;   /* 0 = no RTC wake */
    uint8_t  wake_gpio;     /* pin number of the GPIO wake source (WKP = 17 on Electron), 0 = none */
    uint8_t  wake_network;  /* .network(NETWORK_INTERFACE_CELLULAR) wake source */
    uint8_t  network_flags; /* bit0 = SystemSleepNetworkFlag::INACTIVE_STANDBY */
} otarig_sleep_request;

/* Callbacks owned by the simulator. "Switching" callbacks may suspend the app (greenlet switch);
 * they return non-zero (delay, loop_done) or negative (system, cloud, sleep) when the app has been
 * terminated, and the host layer then throws otarig::AppTerminated. */
typedef struct otarig_host_api {
    uint32_t (*millis)(void);
    int      (*delay)(uint32_t ms);                      /* non-zero: abort */
    int      (*loop_done)(void);                         /* non-zero: abort */
    int      (*serial)(int op, uint8_t* buf, int len);   /* OTARIG_SERIAL_* */
    int      (*system)(int op, int arg);                 /* OTARIG_SYS_* */
    int      (*cloud)(int op, const char* a, const char* b, int flags); /* OTARIG_CLOUD_* */
    int      (*sleep)(const otarig_sleep_request* req);  /* -> SystemSleepWakeupReason; <0: abort */
    uint8_t* eeprom;                                     /* emulated EEPROM, owned by the simulator */
    uint32_t eeprom_len;                                 /* 2047 on Electron */
    int      (*gpio)(int op, int pin, int value);        /* OTARIG_GPIO_*; not switching (ABI 2) */
    /* HAL_EEPROM_Put (index >= 0) or HAL_EEPROM_Clear (index -1): the simulator writes the emulated
     * EEPROM's flash records and updates `eeprom`; switching (the app waits out the flash time),
     * non-zero: abort (ABI 3) */
    int      (*eeprom_put)(int index, const uint8_t* data, int len);
    /* HAL_EEPROM_Get / HAL_EEPROM_Read, before the bytes are read from `eeprom`: Device OS walks the
     * active page's records for every get, so the simulator holds the app for that CPU time (no
     * queued event is taken meanwhile); switching, non-zero: abort (ABI 4) */
    int      (*eeprom_get)(int index, int len);
} otarig_host_api;

/* serial(op, ...) */
#define OTARIG_SERIAL_WRITE        0  /* buf,len -> bytes written */
#define OTARIG_SERIAL_READ         1  /* buf,len -> bytes read, non-blocking, 0 if none */
#define OTARIG_SERIAL_AVAILABLE    2  /* -> bytes available */
#define OTARIG_SERIAL_IS_CONNECTED 3  /* -> 0/1 */

/* gpio(op, pin, value): pinMode / digitalWrite / digitalRead; the simulator keeps the pin state */
#define OTARIG_GPIO_MODE  0  /* value = PinMode (INPUT 0, OUTPUT 1, INPUT_PULLUP 2, INPUT_PULLDOWN 3) -> 0 */
#define OTARIG_GPIO_WRITE 1  /* value = 0/1 -> 0 */
#define OTARIG_GPIO_READ  2  /* -> the pin's level, 0/1 */

/* system(op, arg) */
#define OTARIG_SYS_ENABLE_UPDATES     1
#define OTARIG_SYS_DISABLE_UPDATES    2
#define OTARIG_SYS_UPDATES_ENABLED    3
#define OTARIG_SYS_UPDATES_PENDING    4
#define OTARIG_SYS_UPDATES_FORCED     5
#define OTARIG_SYS_ENABLE_RESET       6
#define OTARIG_SYS_DISABLE_RESET      7
#define OTARIG_SYS_RESET_ENABLED      8
#define OTARIG_SYS_RESET_PENDING      9
#define OTARIG_SYS_RESET             10  /* arg = user data; always ends the app */
#define OTARIG_SYS_RESET_REASON      11
#define OTARIG_SYS_RESET_REASON_DATA 12
#define OTARIG_SYS_VERSION_NUMBER    13
#define OTARIG_SYS_FREE_MEMORY       14
#define OTARIG_SYS_CELLULAR_ON       20
#define OTARIG_SYS_CELLULAR_OFF      21
#define OTARIG_SYS_CELLULAR_READY    22
#define OTARIG_SYS_CELLULAR_CONNECT  23
#define OTARIG_SYS_CELLULAR_DISCONNECT 24

/* cloud(op, a, b, flags) */
#define OTARIG_CLOUD_CONNECT      1
#define OTARIG_CLOUD_DISCONNECT   2
#define OTARIG_CLOUD_CONNECTED    3
#define OTARIG_CLOUD_PUBLISH      4  /* a=name, b=data, flags=PublishFlags bits (PRIVATE 1, NO_ACK 2, WITH_ACK 8) -> 0/1 */
#define OTARIG_CLOUD_PROCESS      5
#define OTARIG_CLOUD_SUBSCRIBE    6  /* a=prefix -> 1 registered, 0 refused */
#define OTARIG_CLOUD_FUNCTION     7  /* a=name   -> 1 registered, 0 refused */
#define OTARIG_CLOUD_VARIABLE     8  /* a=name, b=type ("int32","double","bool","string") -> 1/0 */
#define OTARIG_CLOUD_CONNECTING   9

/* otarig_config(key) */
#define OTARIG_CONFIG_SYSTEM_MODE     0
#define OTARIG_CONFIG_THREADED        1
#define OTARIG_CONFIG_PRODUCT_ID      2
#define OTARIG_CONFIG_PRODUCT_VERSION 3

/* otarig_list(what) */
#define OTARIG_LIST_FUNCTIONS      0
#define OTARIG_LIST_VARIABLES      1
#define OTARIG_LIST_SUBSCRIPTIONS  2
#define OTARIG_LIST_VARIABLE_TYPES 3  /* extension: "name\ttype" lines */

OTARIG_EXPORT int   otarig_abi_version(void);
OTARIG_EXPORT void  otarig_bind(const otarig_host_api* api);
OTARIG_EXPORT void  otarig_run(void);
OTARIG_EXPORT int   otarig_config(int key);
OTARIG_EXPORT void* otarig_retained(uint32_t* len);
OTARIG_EXPORT void  otarig_system_event(uint64_t event, int param);
OTARIG_EXPORT int   otarig_call_function(const char* name, const char* arg, int* found);
OTARIG_EXPORT int   otarig_get_variable(const char* name, char* out, int outlen);
OTARIG_EXPORT int   otarig_cloud_event(const char* name, const char* data);
OTARIG_EXPORT int   otarig_list(int what, char* out, int outlen);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OTARIG_HOST_H */

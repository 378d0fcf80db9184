/*
 * System events, values of device-os@v2.3.1 system/inc/system_event.h (docs/reference/particle-ota.md §2.2).
 */
#pragma once

#include <stdint.h>

typedef uint64_t system_event_t;
typedef void(system_event_handler_t)(system_event_t event, int param, void* pointer);

enum SystemEvents {
    wifi_listen_begin = 1 << 1,
    wifi_listen_update = 1 << 2,
    wifi_listen_end = 1 << 3,
    wifi_listen = wifi_listen_begin + wifi_listen_update + wifi_listen_end,
    setup_begin = wifi_listen_begin,
    setup_update = wifi_listen_update,
    setup_end = wifi_listen_end,
    setup_all = wifi_listen,
    network_credentials = 1 << 4,
    network_status = 1 << 5,
    cloud_status = 1 << 6,             // docs/reference/particle-ota.md §2.2
    button_status = 1 << 7,
    firmware_update = 1 << 8,          // docs/reference/particle-ota.md §2.2: param begin/complete/progress/failed
    firmware_update_pending = 1 << 9,  // docs/reference/particle-ota.md §2.2: pending flag 0 -> 1
    reset_pending = 1 << 10,           // docs/reference/particle-ota.md §2.5: system_pending_shutdown
    reset = 1 << 11,                   // docs/reference/particle-ota.md §2.5: just before the reset
    button_click = 1 << 12,
    button_final_click = 1 << 13,
    time_changed = 1 << 14,
    low_battery = 1 << 15,
    battery_state = 1 << 16,
    power_source = 1 << 17,
    out_of_memory = 1 << 18,
    all_events = 0xFFFFFFFFFFFFFFFFull
};

enum SystemEventsParam {
    network_credentials_added = 1,
    network_credentials_cleared = 2,
    firmware_update_failed = (uint32_t)-1,  // docs/reference/particle-ota.md §2.2 (makes the enum unsigned, as on device)
    firmware_update_begin = 0,
    firmware_update_complete = 1,
    firmware_update_progress = 2,
    cloud_status_disconnected = 0,    // docs/reference/particle-ota.md §2.2 cloud_status parameters
    cloud_status_connecting = 1,
    cloud_status_handshake = 2,
    cloud_status_session_resume = 3,
    cloud_status_connected = 8,
    cloud_status_disconnecting = 9,
    time_changed_manually = 0,
    time_changed_sync = 1,
};

/*
 * DownloadSignal: the download status line, a GPIO the bench companion watches to see the OTA
 * download with no serial link in the way (docs/protocol.md "The download status line").
 *
 * Encoding (from the firmware_update system events, docs/reference/particle-ota.md §2.2):
 *  - begin    -> HIGH: rising edge #1, no chunk received yet;
 *  - progress -> a short LOW pulse, then HIGH: one rising edge per progress event, so rising edge
 *                K+1 follows the K-th progress event (one per good, new chunk, docs/reference/particle-ota.md §2.2 / §2.4);
 *  - complete, failed -> LOW, and the line stays LOW until the next begin;
 *  - cloud_status disconnected -> LOW: a disconnect ends a transfer without `failed`
 *                (docs/reference/particle-ota.md §2.2, corrected), and no transfer outlives the cloud session.
 * LOW also means "no download" at boot: begin() drives the line LOW before any event.
 *
 * Instrumentation, not behaviour: it exists in every build (defective ones included) and decides nothing.
 */
#pragma once

#include "Particle.h"
#include "otarig_options.h"  // OTARIG_STATUS_PIN, OTARIG_STATUS_PULSE_US

class DownloadSignal {
public:
    /** Call in setup(), before any system event can arrive: the pin becomes an output, LOW. */
    void begin(pin_t pin = OTARIG_STATUS_PIN);
    /** Call with every system event a System.on handler receives; firmware_update and
     *  cloud_status disconnected count.
     *  Never blocks (a few microseconds of busy wait), so it is safe in a handler (docs/reference/particle-ota.md §2.2). */
    void onSystemEvent(system_event_t event, int param);

private:
    void risingEdge();

    pin_t pin_ = OTARIG_STATUS_PIN;
    bool begun_ = false;
};

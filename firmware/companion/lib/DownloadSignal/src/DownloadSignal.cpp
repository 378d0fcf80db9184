#include "DownloadSignal.h"

void DownloadSignal::begin(pin_t pin) {
    pin_ = pin;
    pinMode(pin_, OUTPUT);
    digitalWrite(pin_, LOW);  // no download in progress
    begun_ = true;
}

void DownloadSignal::risingEdge() {
    // LOW first, so that every begin/progress is a rising edge whatever level the line had.
    digitalWrite(pin_, LOW);
    delayMicroseconds(OTARIG_STATUS_PULSE_US);  // a busy wait: handlers must not delay() (docs/reference/particle-ota.md §2.2)
    digitalWrite(pin_, HIGH);
}

void DownloadSignal::onSystemEvent(system_event_t event, int param) {
    if (!begun_) return;
    if ((event & cloud_status) && param == (int)cloud_status_disconnected) {
        // docs/reference/particle-ota.md §2.2: a transfer cut by a disconnect ends with no `failed`.
        digitalWrite(pin_, LOW);
        return;
    }
    if (!(event & firmware_update)) return;
    // if/else, not switch: firmware_update_failed is (uint32_t)-1, not a valid int case label.
    if (param == (int)firmware_update_begin || param == (int)firmware_update_progress) {
        risingEdge();
    } else if (param == (int)firmware_update_complete || param == (int)firmware_update_failed) {
        digitalWrite(pin_, LOW);
    }
}

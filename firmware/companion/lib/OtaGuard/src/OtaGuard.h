/*
 * OtaGuard: lets Device OS OTA updates land only in the app's idle windows, after a clean app
 * shutdown, and holds the reset until the app's records are persisted.
 *
 * Device OS facts it relies on (docs/reference/particle-ota.md):
 *  - §2.1  disableUpdates() refuses UpdateBegin unless the update is forced; updatesPending() is set
 *          by the cloud (1.2.1+) and cleared when an update begins.
 *  - §2.2  firmware_update / firmware_update_pending / reset_pending / reset / cloud_status events;
 *          handlers run on the app thread and must not block. A transfer cut by a disconnect
 *          (Particle.disconnect, sleep, Cellular.off, lost coverage) ends WITHOUT firmware_update
 *          failed; the app sees cloud_status disconnected (device-os v2.3.1
 *          system/src/system_task.cpp ~628-640), so that ends a transfer too.
 *  - §2.5  after the transfer the system requests a reset (reset_pending); disableReset() holds it
 *          until enableReset().
 *  - §2.8  without SYSTEM_THREAD(ENABLED) loop() does not run during a transfer, so all decisions
 *          are taken in loop() from flags set by the handler, and the reset hold covers the gap.
 *  - §3.3  Particle.disconnect()/connect() after spark/device/session/end forces a full handshake,
 *          the moment a Standard release is offered.
 */
#pragma once

#include "Particle.h"
// The device companion's build options when present (firmware/companion/src/otarig_options.h);
// a team's project that copies this library gets the default below.
#if defined(__has_include)
#if __has_include("otarig_options.h")
#include "otarig_options.h"  // OTARIG_HANDSHAKE_INTERVAL_MS
#endif
#endif
#ifndef OTARIG_HANDSHAKE_INTERVAL_MS
#define OTARIG_HANDSHAKE_INTERVAL_MS (24ul * 60ul * 60ul * 1000ul)  // forced handshake once a day
#endif

/** What the app reports after a clean shutdown. */
struct OtaGuardShutdownResult {
    uint32_t records;  // records held in persistent storage
    uint32_t lastSeq;  // highest persisted record number
};

/** App callback: finish or abort the current transaction and persist everything. */
typedef OtaGuardShutdownResult (*OtaGuardShutdownFn)(void* ctx);
/** Observer of every system event the guard's handler receives (called from the handler). */
typedef void (*OtaGuardEventFn)(system_event_t event, int param, void* ctx);
/** Observer of each guard decision; `result` is set for shutdown_complete only. */
typedef void (*OtaGuardActionFn)(const char* action, const OtaGuardShutdownResult* result, void* ctx);

class OtaGuard {
public:
    static OtaGuard& instance();

    void onShutdown(OtaGuardShutdownFn fn, void* ctx) { shutdownFn_ = fn; shutdownCtx_ = ctx; }
    void setObserver(OtaGuardEventFn ev, OtaGuardActionFn action, void* ctx) {
        eventFn_ = ev;
        actionFn_ = action;
        observerCtx_ = ctx;
    }
    void setHandshakeInterval(uint32_t ms) { handshakeIntervalMs_ = ms; }

    /** Call in setup() before Particle.connect(): holds updates and resets, registers the handler. */
    void begin();
    /** Call at the top of every loop(): takes every decision (never blocks). */
    void loop();
    /** The app's state: idle (parked) opens the window, work closes it. Safe from any handler. */
    void setIdle(bool idle);

    bool windowOpen() const { return windowOpen_; }
    /** The app holds resets for reasons of its own (a critical section); the guard releases a
     *  pending reset only once the hold ends. Device OS keeps receiving OTAs meanwhile (docs/reference/particle-ota.md §2.5,
     *  multiple_ota_no_reset). */
    void holdReset(bool hold) { appResetHold_ = hold; }
    /** False once the app has been shut down for an update, until it may resume. */
    bool appRunning() const { return !shutDown_; }
    bool updateInProgress() const { return transferActive_; }

private:
    OtaGuard() = default;
    static void handler(system_event_t event, int param, void* pointer);
    void handleEvent(system_event_t event, int param);
    void emit(const char* action, const OtaGuardShutdownResult* result = nullptr);
    void shutdownApp();
    void holdUpdates();
    void releaseUpdates();
    bool pendingNow();
    void maybeForceHandshake();

    OtaGuardShutdownFn shutdownFn_ = nullptr;
    void* shutdownCtx_ = nullptr;
    OtaGuardEventFn eventFn_ = nullptr;
    OtaGuardActionFn actionFn_ = nullptr;
    void* observerCtx_ = nullptr;
    uint32_t handshakeIntervalMs_ = OTARIG_HANDSHAKE_INTERVAL_MS;

    // Set by the event handler, consumed by loop() (docs/reference/particle-ota.md §2.2: handlers must not block).
    volatile bool evPending_ = false;
    volatile bool evBegin_ = false;
    volatile bool evComplete_ = false;
    volatile bool evFailed_ = false;
    volatile bool evResetPending_ = false;
    volatile bool evDisconnected_ = false;
    volatile bool idle_ = false;
    // Order of the last begin, the last complete/failed and the last cloud disconnect: each of the
    // others ends only an earlier begin.
    volatile uint32_t eventSeq_ = 0;
    volatile uint32_t beginSeq_ = 0;
    volatile uint32_t endSeq_ = 0;
    volatile uint32_t disconnectSeq_ = 0;

    bool begun_ = false;
    bool windowOpen_ = false;
    bool pendingLatched_ = false;    // firmware_update_pending seen, no transfer since
    bool updatesReleased_ = false;   // the guard called enableUpdates()
    bool transferActive_ = false;    // firmware_update begin seen, no complete/failed/disconnect yet
    bool updateBegun_ = false;       // a transfer began since the last resume
    bool shutDown_ = false;          // the app was shut down cleanly and has not resumed
    bool resetPendingSeen_ = false;
    bool resetReleased_ = false;
    bool resetHeldReported_ = false;
    bool appResetHold_ = false;
    uint8_t handshakeStage_ = 0;     // 1 = disconnected, reconnect pending
    uint32_t handshakeStageMs_ = 0;
    uint32_t lastHandshakeMs_ = 0;
};

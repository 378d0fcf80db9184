#include "OtaGuard.h"

OtaGuard& OtaGuard::instance() {
    static OtaGuard guard;
    return guard;
}

void OtaGuard::begin() {
    if (begun_) return;
    begun_ = true;
    // docs/reference/particle-ota.md §3.1: disable updates before connecting, so none can start before the app decides.
    holdUpdates();
    // docs/reference/particle-ota.md §2.5: hold the post-update reset until the app has persisted its records.
    System.disableReset();
    System.on(firmware_update | firmware_update_pending | reset_pending | reset | cloud_status, &OtaGuard::handler);
    lastHandshakeMs_ = millis();
}

void OtaGuard::handler(system_event_t event, int param, void*) { instance().handleEvent(event, param); }

void OtaGuard::handleEvent(system_event_t event, int param) {
    // Only flags here: with or without SYSTEM_THREAD the handler must return at once (docs/reference/particle-ota.md §2.2).
    if (event & firmware_update) {
        if (param == (int)firmware_update_begin) {
            beginSeq_ = ++eventSeq_;
            evBegin_ = true;
        } else if (param == (int)firmware_update_complete) {
            endSeq_ = ++eventSeq_;
            evComplete_ = true;
        } else if (param == (int)firmware_update_failed) {
            endSeq_ = ++eventSeq_;
            evFailed_ = true;
        }
    }
    if (event & firmware_update_pending) evPending_ = true;
    if (event & reset_pending) evResetPending_ = true;
    if ((event & cloud_status) && param == (int)cloud_status_disconnected) {
        disconnectSeq_ = ++eventSeq_;
        evDisconnected_ = true;
    }
    if (eventFn_) eventFn_(event, param, observerCtx_);
}

void OtaGuard::setIdle(bool idle) { idle_ = idle; }

void OtaGuard::emit(const char* action, const OtaGuardShutdownResult* result) {
    if (actionFn_) actionFn_(action, result, observerCtx_);
}

void OtaGuard::holdUpdates() {
    System.disableUpdates();
    emit("updates_disabled");
    updatesReleased_ = false;
}

void OtaGuard::releaseUpdates() {
    System.enableUpdates();
    emit("updates_enabled");
    updatesReleased_ = true;
}

void OtaGuard::shutdownApp() {
    emit("shutdown_begin");
    OtaGuardShutdownResult r = {0, 0};
    if (shutdownFn_) r = shutdownFn_(shutdownCtx_);
    shutDown_ = true;
    emit("shutdown_complete", &r);
}

bool OtaGuard::pendingNow() {
    // docs/reference/particle-ota.md §2.1: the event marks the 0->1 edge, the flag is the state (1.2.1+).
    return pendingLatched_ || System.updatesPending();
}

void OtaGuard::loop() {
    if (!begun_) return;
    // 1. Consume what the handler saw, in the order Device OS emits it (docs/reference/particle-ota.md §2.2, §2.5).
    if (evPending_) {
        evPending_ = false;
        pendingLatched_ = true;
    }
    bool begunNow = false;
    if (evBegin_) {
        evBegin_ = false;
        transferActive_ = true;
        updateBegun_ = true;
        pendingLatched_ = false;  // docs/reference/particle-ota.md §2.3: prepare() clears the pending flag
        begunNow = true;
    }
    // A `complete` or `failed` ends only a transfer begun before it: a threaded app may take the next
    // begin in the same pass (a long delay(), docs/reference/particle-ota.md §2.2, §2.5).
    const bool endsActive = endSeq_ > beginSeq_;
    if (evComplete_) {
        evComplete_ = false;
        if (endsActive) transferActive_ = false;
    }
    bool transferLost = false;
    if (evFailed_) {
        evFailed_ = false;
        if (endsActive) transferLost = true;
    }
    if (evDisconnected_) {
        evDisconnected_ = false;
        // docs/reference/particle-ota.md §2.2, §2.4: a disconnect ends a transfer silently (no
        // `failed`); only a disconnect after the last begin cuts it (a new begin may already follow).
        if (transferActive_ && disconnectSeq_ > beginSeq_) transferLost = true;
    }
    if (transferLost) {
        transferActive_ = false;
        updateBegun_ = false;
        // The transfer is over without an update: hold updates again and let the app resume.
        holdUpdates();
        shutDown_ = false;
    }
    if (evResetPending_) {
        evResetPending_ = false;
        resetPendingSeen_ = true;
    }

    // 2. A transfer began while the app still runs (a forced update, which disableUpdates() cannot refuse, §2.1) and
    //    is not already lost (non-threaded: its begin and the disconnect that cut it come in one pass, §2.8). Shut down.
    if (begunNow && updateBegun_ && !shutDown_) shutdownApp();

    // 3. Idle window = the app is idle.
    const bool open = idle_;
    if (open != windowOpen_) {
        windowOpen_ = open;
        emit(open ? "window_open" : "window_close");
        if (!open && !updateBegun_ && !resetPendingSeen_) {
            // Work starts and no transfer has begun: refuse updates again and let the app run.
            if (updatesReleased_) holdUpdates();
            shutDown_ = false;
        }
    }

    // 4. An update is pending and the window is open: clean shutdown, then allow the update.
    if (windowOpen_ && !updatesReleased_ && !transferActive_ && !updateBegun_ && !resetPendingSeen_ &&
        pendingNow()) {
        if (!shutDown_) shutdownApp();
        releaseUpdates();
    }

    // 5. The system wants to reset (docs/reference/particle-ota.md §2.5): persist first, then release the reset.
    if (!resetReleased_ && (resetPendingSeen_ || System.resetPending())) {
        resetPendingSeen_ = true;
        if (appResetHold_) {
            if (!resetHeldReported_) {
                resetHeldReported_ = true;
                emit("reset_held");
            }
            if (!shutDown_) shutdownApp();
        } else {
        if (!shutDown_) {
            if (!resetHeldReported_) {
                resetHeldReported_ = true;
                emit("reset_held");
            }
            shutdownApp();
        }
        resetReleased_ = true;
        System.enableReset();
        emit("reset_released");
        }
    }

    // 6. Forced handshake, so that Standard releases are offered at least once a day (docs/reference/particle-ota.md §3.3).
    maybeForceHandshake();
}

void OtaGuard::maybeForceHandshake() {
    const uint32_t now = millis();
    if (handshakeStage_ == 1) {
        // Reconnect once the disconnect took effect (or after 5 s regardless).
        if (!Particle.connected() || (uint32_t)(now - handshakeStageMs_) >= 5000) {
            handshakeStage_ = 0;
            Particle.connect();
        }
        return;
    }
    if (!windowOpen_ || transferActive_ || updatesReleased_ || updateBegun_ || resetPendingSeen_) return;
    if ((uint32_t)(now - lastHandshakeMs_) < handshakeIntervalMs_) return;
    if (!Particle.connected()) return;
    lastHandshakeMs_ = now;
    // Discards the cloud session so that the next connection is a full handshake.
    Particle.publish("spark/device/session/end", "", PRIVATE);
    Particle.disconnect();
    handshakeStage_ = 1;
    handshakeStageMs_ = now;
    emit("handshake_forced");
}

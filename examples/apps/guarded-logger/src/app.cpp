/*
 * The forum's logger (examples/apps/forum-disable-updates) built on OtaGuard, the pattern the
 * device companion follows (firmware/companion/lib/OtaGuard): threaded, SEMI_AUTOMATIC, the guard
 * holds updates and resets from before the first connection, lets updates in only while the
 * machine is idle, shuts the app down cleanly (the batch written) before the reset, and forces a
 * full handshake once a day so a Standard release lands within a day
 * (docs/reference/particle-ota.md §1.3, §2.5, §3.1). The app itself only says when it is idle and
 * how to shut down.
 *
 * `otarig run --firmware examples/apps/guarded-logger` passes.
 */
#include "Particle.h"
#include "OtaGuard.h"
#include "ReadingLog.h"
#include "TestAgent.h"  // otarig

SYSTEM_MODE(SEMI_AUTOMATIC);
SYSTEM_THREAD(ENABLED);
PRODUCT_ID(4242);
PRODUCT_VERSION(3);

namespace {

const uint32_t kReadingPeriodMs = 1000;  // one reading a second while working

ReadingLog readings;
uint32_t lastReadingMs = 0;
bool working = false;

// otarig: what the agent may read and do
bool setWorking(bool busy, void*);
bool isWorking(void*) { return working; }
bool windowOpen(void*) { return OtaGuard::instance().windowOpen(); }
uint32_t kept(void*) { return readings.count(); }
uint32_t lastKept(void*) { return readings.lastSeq(); }
void holdReset(bool hold, void*) { OtaGuard::instance().holdReset(hold); }

TestAgent agent({4242, 3, true, kReadingPeriodMs}, {setWorking, isWorking, windowOpen, kept, lastKept, nullptr, holdReset});  // otarig

bool setWorking(bool busy, void*) {  // otarig: the rig starts and stops the job
    if (busy != working) {
        working = busy;
        lastReadingMs = millis();
        agent.appWorkload(busy);
    }
    OtaGuard::instance().setIdle(!busy);
    return true;
}

/** The guard's shutdown: write the batch. */
OtaGuardShutdownResult shutDown(void*) {
    readings.write();
    return {readings.count(), readings.lastSeq()};
}

void onReading(uint32_t seq, bool written) { agent.appRecord(seq, written); }                  // otarig
void onSystemEvent(system_event_t event, int param, void*) { agent.sysEvent(event, param); }  // otarig
void onGuardAction(const char* action, const OtaGuardShutdownResult* r, void*) {              // otarig
    agent.guardAction(action, r ? r->records : 0, r ? r->lastSeq : 0, r != nullptr);
}

}  // namespace

void setup() {
    readings.begin(onReading);
    agent.begin(readings.count(), readings.lastSeq());  // otarig
    OtaGuard& guard = OtaGuard::instance();
    guard.onShutdown(shutDown, nullptr);
    guard.setObserver(onSystemEvent, onGuardAction, nullptr);
    guard.setIdle(true);
    guard.begin();  // updates and resets held before the first connection (§3.1)
    Particle.connect();
}

void loop() {
    OtaGuard& guard = OtaGuard::instance();
    guard.loop();
    agent.loop();  // otarig
    if (working && guard.appRunning() && (uint32_t)(millis() - lastReadingMs) >= kReadingPeriodMs) {
        lastReadingMs += kReadingPeriodMs;
        readings.take();
    }
    delay(100);
}

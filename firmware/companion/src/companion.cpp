/*
 * otarig companion: example vehicle-telemetry app using OtaGuard and TestAgent.
 *
 * Busy while "driving" (one numbered record per second into a RAM batch, persisted to EEPROM in
 * transactions of 5), idle while "parked". The OTA guard lets updates land only while parked,
 * after a clean shutdown that persists the partial batch (docs/design.md; docs/reference/particle-ota.md §2, §3).
 *
 * Build-time options (otarig_options.h: -D, or a generated otarig_build_config.h, or defaults):
 * OTARIG_PRODUCT_ID (4242), COMPANION_VERSION (1), OTARIG_THREADED (1),
 * OTARIG_HANDSHAKE_INTERVAL_MS (24 h),
 * OTARIG_SYSTEM_MODE (SEMI_AUTOMATIC; AUTOMATIC or MANUAL to test docs/reference/particle-ota.md §3.1 / §7.2 boot paths),
 * OTARIG_STATUS_PIN (D6: the download status line the bench watches, docs/protocol.md).
 */
#include "otarig_options.h"
#include "Particle.h"
#include "DownloadSignal.h"
#include "OtaGuard.h"
#include "RecordLog.h"
#include "TestAgent.h"

// docs/reference/particle-ota.md §3.1: SEMI_AUTOMATIC by default, so updates are disabled before the first connection.
// Other modes exist only so the rig can show why (AUTOMATIC non-threaded runs setup() after connect).
SYSTEM_MODE(OTARIG_SYSTEM_MODE);
#if OTARIG_THREADED
SYSTEM_THREAD(ENABLED);
#endif
PRODUCT_ID(OTARIG_PRODUCT_ID);
PRODUCT_VERSION(COMPANION_VERSION);

namespace {

const uint32_t kBatchSize = 5;           // records per transaction
const uint32_t kRecordPeriodMs = 1000;   // one record per second while driving
const uint32_t kDrivingLoopMs = 100;     // loop pacing: the simulator's speed depends on it
const uint32_t kParkedLoopMs = 1000;
// Device OS refuses a user event when the attempt 4 before it was less than 1 s earlier, and counts
// refused attempts too (docs/reference/particle-ota.md §2.8; device-os v2.3.1
// communication/src/publisher.h ~72-85): publishing once per 100 ms loop would be refused for good.
const uint32_t kPublishPeriodMs = 300;

RecordLog recordLog;
DownloadSignal statusLine;  // instrumentation for the bench, in every build (defective ones included)
LogRecord batch[kBatchSize];
uint32_t batchCount = 0;
uint32_t nextSeq = 1;
uint32_t lastPublishedSeq = 0;
uint32_t lastRecordMs = 0;
uint32_t lastPublishMs = 0;
bool publishedOnce = false;
bool driving = false;

// Cloud variables (Particle.variable keeps references).
int varVersion = COMPANION_VERSION;
int varRecords = 0;
int varLastSeq = 0;
bool varWindowOpen = false;

bool agentSetWorkload(bool busy, void*);
bool agentBusy(void*) { return driving; }
bool agentWindowOpen(void*) { return OtaGuard::instance().windowOpen(); }
void agentHoldReset(bool hold, void*) { OtaGuard::instance().holdReset(hold); }
uint32_t agentRecords(void*) { return recordLog.count(); }
uint32_t agentLastSeq(void*) { return recordLog.lastSeq(); }
bool agentReadRecord(uint32_t index, uint32_t* seq, void*) {
    LogRecord r;
    if (!recordLog.read(index, r)) return false;
    *seq = r.seq;
    return true;
}

TestAgent agent({OTARIG_PRODUCT_ID, COMPANION_VERSION, OTARIG_THREADED != 0, kRecordPeriodMs, 2 /* RecordLog: copies A and B */,
                 kParkedLoopMs /* publishPersisted() runs every loop pass */},
                {agentSetWorkload, agentBusy, agentWindowOpen, agentRecords, agentLastSeq, nullptr,
                 agentHoldReset, agentReadRecord});

void refreshVariables() {
    varRecords = (int)recordLog.count();
    varLastSeq = (int)recordLog.lastSeq();
    varWindowOpen = OtaGuard::instance().windowOpen();
}

/** The transaction: persist the RAM batch, then report each record as persisted. */
void persistBatch() {
    if (batchCount == 0) return;
    if (recordLog.append(batch, batchCount)) {
        for (uint32_t i = 0; i < batchCount; i++) agent.appRecord(batch[i].seq, true);
    }
    batchCount = 0;
    refreshVariables();
}

void produceRecord() {
    LogRecord r;
    r.seq = nextSeq++;
    r.t = millis();
    r.value = (int32_t)(40 + (r.seq * 7) % 60);  // "speed"
    batch[batchCount++] = r;
    agent.appRecord(r.seq, false);
    if (batchCount >= kBatchSize) persistBatch();
}

/** Guard callback: finish the current transaction and persist (clean shutdown). */
OtaGuardShutdownResult shutdownApp(void*) {
    persistBatch();
    return {recordLog.count(), recordLog.lastSeq()};
}

void setWorkload(bool busy) {
    if (busy != driving) {
        driving = busy;
        if (busy) lastRecordMs = millis();
        agent.appWorkload(busy);
    }
    OtaGuard::instance().setIdle(!busy);
}

bool agentSetWorkload(bool busy, void*) {
    setWorkload(busy);
    return true;
}

/** Cloud function `workload`: "busy" -> 0, "idle" -> 0, anything else -> -1. */
int cloudWorkload(String arg) {
    arg.trim();
    if (arg == "busy") {
        setWorkload(true);
        return 0;
    }
    if (arg == "idle") {
        setWorkload(false);
        return 0;
    }
    return -1;
}

void onSystemEvent(system_event_t event, int param, void*) {
    statusLine.onSystemEvent(event, param);
    agent.sysEvent(event, param);
}

void onGuardAction(const char* action, const OtaGuardShutdownResult* r, void*) {
    agent.guardAction(action, r ? r->records : 0, r ? r->lastSeq : 0, r != nullptr);
    refreshVariables();
}

void publishPersisted() {
    // Publish persisted records, at most one per kPublishPeriodMs, while connected and running.
    if (lastPublishedSeq >= recordLog.lastSeq() || !Particle.connected()) return;
    const uint32_t now = millis();
    if (publishedOnce && (uint32_t)(now - lastPublishMs) < kPublishPeriodMs) return;
    publishedOnce = true;
    lastPublishMs = now;
    const uint32_t seq = lastPublishedSeq + 1;
    char data[48];
    snprintf(data, sizeof(data), "{\"seq\":%lu}", (unsigned long)seq);
    const bool ok = Particle.publish("otarig/telemetry", data, PRIVATE);
    agent.appPublish(seq, ok, "otarig/telemetry");
    if (ok) lastPublishedSeq = seq;
}

}  // namespace

void setup() {
    statusLine.begin(OTARIG_STATUS_PIN);  // LOW before the guard registers for system events
    recordLog.begin();
    nextSeq = recordLog.lastSeq() + 1;
    lastPublishedSeq = recordLog.lastSeq();
    agent.begin(recordLog.count(), recordLog.lastSeq());

    OtaGuard& guard = OtaGuard::instance();
    guard.onShutdown(shutdownApp, nullptr);
    guard.setObserver(onSystemEvent, onGuardAction, nullptr);
    guard.setHandshakeInterval(OTARIG_HANDSHAKE_INTERVAL_MS);
    guard.setIdle(true);  // parked at boot
    guard.begin();        // before Particle.connect() (docs/reference/particle-ota.md §3.1)

    Particle.function("workload", cloudWorkload);
    Particle.variable("version", varVersion);
    Particle.variable("records", varRecords);
    Particle.variable("lastSeq", varLastSeq);
    Particle.variable("windowOpen", varWindowOpen);
    refreshVariables();

    Particle.connect();
}

void loop() {
    OtaGuard& guard = OtaGuard::instance();
    guard.loop();
    agent.loop();

    if (driving && guard.appRunning()) {
        const uint32_t now = millis();
        if ((uint32_t)(now - lastRecordMs) >= kRecordPeriodMs) {
            lastRecordMs += kRecordPeriodMs;
            if ((uint32_t)(now - lastRecordMs) >= kRecordPeriodMs) lastRecordMs = now;  // no bursts after a stall
            produceRecord();
        }
    }
    if (guard.appRunning()) publishPersisted();
    varWindowOpen = guard.windowOpen();

    delay(driving ? kDrivingLoopMs : kParkedLoopMs);
}

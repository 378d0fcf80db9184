/*
 * The forum's question, as its author wrote the app: a product fleet of Electrons logging readings
 * while the machine works, which must not be updated mid-job. Updates are disabled in setup() and
 * enabled again whenever the machine is idle. Nothing else: the default system mode (AUTOMATIC),
 * no SYSTEM_THREAD(ENABLED), no handler for firmware_update_pending, and nothing holds the reset
 * that follows a download.
 *
 * `otarig run --firmware examples/apps/forum-disable-updates` fails, and says why;
 * `examples/apps/forum-disable-updates-fixed` is the same app with the changes it asks for
 * (docs/your-firmware.md walks through both).
 *
 * The lines marked "otarig" are the test agent (lib/TestAgent): the rig's only hold on the app.
 */
#include "Particle.h"
#include "TestAgent.h"  // otarig

PRODUCT_ID(4242);
PRODUCT_VERSION(3);

namespace {

const uint32_t kReadingPeriodMs = 1000;  // one reading a second while working
const uint32_t kBatch = 10;              // readings written to EEPROM together
const uint32_t kMagic = 0x464f5255;      // "FORU"

struct Stored {                          // EEPROM address 0: the readings kept so far
    uint32_t magic;
    uint32_t count;
    uint32_t lastSeq;
};

Stored stored;
uint32_t pending[kBatch];                // sequence numbers read but not yet written
uint32_t pendingCount = 0;
uint32_t lastReadingMs = 0;
bool working = false;

bool setWorking(bool busy, void*);
bool isWorking(void*) { return working; }
bool updatesOpen(void*) { return System.updatesEnabled(); }
uint32_t storedCount(void*) { return stored.count; }
uint32_t storedLastSeq(void*) { return stored.lastSeq; }

TestAgent agent({4242, 3, false},                                    // otarig
                {setWorking, isWorking, updatesOpen, storedCount, storedLastSeq, nullptr, nullptr});

bool setWorking(bool busy, void*) {  // otarig: the rig starts and stops the job
    if (busy != working) {
        working = busy;
        lastReadingMs = millis();
        agent.appWorkload(busy);
    }
    return true;
}

void onSystemEvent(system_event_t event, int param) { agent.sysEvent(event, param); }  // otarig

void writeBatch() {
    for (uint32_t i = 0; i < pendingCount; i++) {
        stored.count++;
        stored.lastSeq = pending[i];
    }
    EEPROM.put(0, stored);
    for (uint32_t i = 0; i < pendingCount; i++) agent.appRecord(pending[i], true);  // otarig
    pendingCount = 0;
}

void takeReading() {
    const uint32_t seq = stored.lastSeq + pendingCount + 1;
    pending[pendingCount++] = seq;
    agent.appRecord(seq, false);  // otarig
    if (pendingCount == kBatch) writeBatch();
}

}  // namespace

void setup() {
    System.disableUpdates();  // no update while the machine works
    System.on(all_events, onSystemEvent);  // otarig
    EEPROM.get(0, stored);
    if (stored.magic != kMagic) stored = {kMagic, 0, 0};
    agent.begin(stored.count, stored.lastSeq);  // otarig
}

void loop() {
    agent.loop();  // otarig
    if (!working && !System.updatesEnabled()) {
        System.enableUpdates();  // idle: let updates in
        agent.window(true);  // otarig
    } else if (working && System.updatesEnabled()) {
        System.disableUpdates();
        agent.window(false);  // otarig
    }
    if (working && (uint32_t)(millis() - lastReadingMs) >= kReadingPeriodMs) {
        lastReadingMs += kReadingPeriodMs;
        takeReading();
    }
    delay(100);
}

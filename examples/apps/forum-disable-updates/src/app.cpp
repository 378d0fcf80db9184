/*
 * The forum's question, as its author wrote the app: a product fleet of Electrons logging readings
 * while the machine works, which must not be updated mid-job. Updates are disabled in setup() and
 * enabled again whenever the machine is idle. Nothing else: the default system mode (AUTOMATIC),
 * no SYSTEM_THREAD(ENABLED), no handler for firmware_update_pending, and nothing holds the reset
 * that follows a download.
 *
 * Without threading, AUTOMATIC runs setup() only once Device OS counts the cloud connected: after
 * the cloud has acknowledged the handshake's messages (updates "enabled", their boot default, among
 * them). An update the cloud offers before that — a release made while the device was off, offered
 * at its boot handshake — downloads and resets the device before setup() can disable updates
 * (docs/reference/particle-ota.md §3.1, §8.15; scenario test_release_made_while_off_is_offered_at_the_boot_handshake).
 *
 * `otarig run --firmware examples/apps/forum-disable-updates` fails, and says why;
 * `examples/apps/forum-disable-updates-fixed` is the same app with the changes it asks for
 * (docs/your-firmware.md walks through both). The readings (lib/ReadingLog) are batched in RAM
 * and written to EEPROM ten at a time.
 *
 * The lines marked "otarig" are the test agent (lib/TestAgent): the rig's only hold on the app.
 */
#include "Particle.h"
#include "ReadingLog.h"
#include "TestAgent.h"  // otarig

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
bool updatesOpen(void*) { return System.updatesEnabled(); }
uint32_t kept(void*) { return readings.count(); }
uint32_t lastKept(void*) { return readings.lastSeq(); }

TestAgent agent({4242, 3, false}, {setWorking, isWorking, updatesOpen, kept, lastKept, nullptr, nullptr});  // otarig

bool setWorking(bool busy, void*) {  // otarig: the rig starts and stops the job
    if (busy != working) {
        working = busy;
        lastReadingMs = millis();
        agent.appWorkload(busy);
    }
    return true;
}

void onReading(uint32_t seq, bool written) { agent.appRecord(seq, written); }                  // otarig
void onSystemEvent(system_event_t event, int param) { agent.sysEvent(event, param); }  // otarig

}  // namespace

void setup() {
    System.disableUpdates();  // no update while the machine works
    System.on(all_events, onSystemEvent);  // otarig
    readings.begin(onReading);
    agent.begin(readings.count(), readings.lastSeq());  // otarig
}

void loop() {
    agent.loop();  // otarig
    if (!working && !System.updatesEnabled()) {
        System.enableUpdates();  // idle: let updates in
        agent.window(true);      // otarig
    } else if (working && System.updatesEnabled()) {
        System.disableUpdates();
        agent.window(false);  // otarig
    }
    if (working && (uint32_t)(millis() - lastReadingMs) >= kReadingPeriodMs) {
        lastReadingMs += kReadingPeriodMs;
        readings.take();
    }
    delay(100);
}

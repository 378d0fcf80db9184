/*
 * The forum's app (examples/apps/forum-disable-updates) with the changes otarig's verdicts ask
 * for, and nothing else. Each change is marked "FIX" with the reference it follows:
 *
 *  1. SYSTEM_THREAD(ENABLED) and SEMI_AUTOMATIC, updates and resets disabled in setup() *before*
 *     Particle.connect(): an AUTOMATIC non-threaded app connects before setup() runs, so an update
 *     offered at the boot handshake could land before it refused it, and a non-threaded app stops
 *     while the cloud (re)connects and during a download (docs/reference/particle-ota.md §3.1, §2.8).
 *  2. Once a download begins (a forced one can begin while the machine works, §1.5) the app
 *     finishes and writes its batch; the reset that follows is held (System.disableReset()) until
 *     then (§2.5). A download that ends without completing (failed, or cut by a disconnect, which
 *     sends no `failed`, §2.2) lets the app go back to work.
 *  3. A full handshake once a day while idle (publish spark/device/session/end, then reconnect):
 *     a Standard release is offered only at a full handshake, which an always-connected device
 *     otherwise does every few days at best (docs/reference/particle-ota.md §1.1, §1.3).
 *
 * firmware_update_pending needs no handler in this app: it enables updates whenever it is idle,
 * and enabling them is what lets a pending update in (docs/reference/particle-ota.md §1.5, §7.8.3).
 *
 * `otarig run --firmware examples/apps/forum-disable-updates-fixed` passes.
 */
#include "Particle.h"
#include "ReadingLog.h"
#include "TestAgent.h"  // otarig

SYSTEM_MODE(SEMI_AUTOMATIC);  // FIX 1
SYSTEM_THREAD(ENABLED);       // FIX 1
PRODUCT_ID(4242);
PRODUCT_VERSION(3);

namespace {

const uint32_t kReadingPeriodMs = 1000;               // one reading a second while working
const uint32_t kHandshakeMs = 24ul * 60 * 60 * 1000;  // FIX 3: once a day

ReadingLog readings;
uint32_t lastReadingMs = 0;
bool working = false;
volatile bool downloading = false;  // FIX 2: set by the system event handler
volatile bool resetComing = false;  // FIX 2: the new firmware is in, or Device OS announced a reset
bool shutDown = false;              // FIX 2: written, waiting for the download's end and the reset
uint32_t lastHandshakeMs = 0;        // FIX 3
bool reconnecting = false;           // FIX 3

// otarig: what the agent may read and do
bool setWorking(bool busy, void*);
bool isWorking(void*) { return working; }
bool updatesOpen(void*) { return System.updatesEnabled(); }
uint32_t kept(void*) { return readings.count(); }
uint32_t lastKept(void*) { return readings.lastSeq(); }

TestAgent agent({4242, 3, true, kReadingPeriodMs}, {setWorking, isWorking, updatesOpen, kept, lastKept, nullptr, nullptr});  // otarig

bool setWorking(bool busy, void*) {  // otarig: the rig starts and stops the job
    if (busy != working) {
        working = busy;
        lastReadingMs = millis();
        agent.appWorkload(busy);
    }
    return true;
}

void onReading(uint32_t seq, bool written) { agent.appRecord(seq, written); }  // otarig

void onSystemEvent(system_event_t event, int param) {
    agent.sysEvent(event, param);  // otarig
    // FIX 2 (a handler must not block: a flag only)
    if (event == firmware_update && param == (int)firmware_update_begin) downloading = true;
    if (event == firmware_update && param == (int)firmware_update_complete) resetComing = true;
    if (event == reset_pending || event == reset) resetComing = downloading = true;  // also after a failed one
    const bool ended = (event == firmware_update && param == (int)firmware_update_failed) ||
                       (event == cloud_status && param == (int)cloud_status_disconnected);
    if (ended && !resetComing) downloading = false;  // no new firmware, no reset announced: back to work
}

/** FIX 3: the cloud checks for a Standard release at a full handshake only (§1.1); ending the
 *  session and reconnecting makes the next connection one (docs/reference/particle-ota.md §1.3). */
void dailyHandshake() {
    if (reconnecting) {
        if (!Particle.connected()) {
            Particle.connect();
            reconnecting = false;
        }
    } else if (!working && Particle.connected() && (uint32_t)(millis() - lastHandshakeMs) >= kHandshakeMs) {
        lastHandshakeMs = millis();
        Particle.publish("spark/device/session/end", "", PRIVATE);
        Particle.disconnect();
        reconnecting = true;
    }
}

}  // namespace

void setup() {
    System.disableUpdates();  // no update while the machine works
    System.disableReset();    // FIX 2: the reset after a download waits until the batch is written
    System.on(all_events, onSystemEvent);
    readings.begin(onReading);
    agent.begin(readings.count(), readings.lastSeq());  // otarig
    Particle.connect();       // FIX 1: only now, with updates already disabled
}

void loop() {
    agent.loop();  // otarig
    if (downloading && !shutDown) {  // FIX 2: an update is coming in: finish, write, then let it reset
        readings.write();
        shutDown = true;
        agent.shutdownComplete(readings.count(), readings.lastSeq());  // otarig
        agent.resetHeld(false);                                        // otarig
        System.enableReset();
    } else if (!downloading && shutDown) {  // FIX 2: the download ended without an update: back to work
        shutDown = false;
        System.disableReset();
    }
    if (shutDown) {
        delay(100);
        return;
    }
    if (!working && !System.updatesEnabled()) {
        System.enableUpdates();  // idle: let updates in (a pending one starts now)
        agent.window(true);      // otarig
    } else if (working && System.updatesEnabled()) {
        System.disableUpdates();
        agent.window(false);  // otarig
    }
    dailyHandshake();  // FIX 3
    if (working && (uint32_t)(millis() - lastReadingMs) >= kReadingPeriodMs) {
        lastReadingMs += kReadingPeriodMs;
        readings.take();
    }
    delay(100);
}

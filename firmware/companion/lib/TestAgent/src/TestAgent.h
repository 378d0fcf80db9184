/*
 * TestAgent: otarig's serial test agent (docs/protocol.md, protocol version 1), the one library a
 * product team links into its firmware so the rig can certify it (docs/your-firmware.md).
 * One JSON object per line (<= 512 bytes with the newline) over USB Serial; events carry "ev" and
 * "t" (millis), commands carry "cmd" and "id" and get exactly one reply. The agent is independent
 * of the app: it reaches it through TestAgentApp hooks, and the app reports its work through the
 * event calls below.
 *
 * What the app must do: agent.begin() in setup(), agent.loop() in loop(), agent.sysEvent() from a
 * System.on(all_events, ...) handler, and agent.shutdownComplete() once it has shut down cleanly
 * for an update. Everything else is optional.
 */
#pragma once

#include "Particle.h"

#define TESTAGENT_PROTO 1
#define TESTAGENT_LINE_MAX 512  // bytes including the newline (docs/protocol.md "Framing")

class JsonObject;  // command reader (TestAgent.cpp)

/** Static facts reported in hello. The rig's host build defines OTARIG_PRODUCT_ID (the bench's
 *  product), which replaces the first; hello's product version is always the one the app's
 *  PRODUCT_VERSION(x) put in the module (0xFFFF without it), whatever the second says. */
struct TestAgentInfo {
    int productId;
    int productVersion;
    bool threaded;
    /** The app's declared cadence: one record every `recordPeriodMs` while busy, on a grid from the
     *  moment it turns busy (hello `record_period_ms`, verdict `records_keep_declared_cadence`).
     *  0 (or left out of the initializer) declares none, and the verdict does not apply. */
    uint32_t recordPeriodMs;
    /** How many checked copies of each persisted record the app keeps (hello `record_copies`).
     *  2 or more declares that a record survives the loss of one copy, which the stored-data
     *  scenario checks (docs/your-firmware.md "Stored data"); 0 (left out) or 1 declares it does
     *  not, and that scenario does not apply. */
    uint8_t recordCopies;
    /** While a persisted record waits to be published and the app runs with the cloud connected,
     *  the app tries to publish (`appPublish`) at least once every `publishEveryMs` (hello
     *  `publish_every_ms`, verdict `publishing_keeps_up`); 0 (left out) declares none. */
    uint32_t publishEveryMs;
};

/** Hooks into the application, all optional (nullptr): hello lists the ones given ("hooks"), and a
 *  scenario or verdict that needs a missing one is "not applicable to this firmware". */
struct TestAgentApp {
    bool (*setWorkload)(bool busy, void* ctx);
    bool (*busy)(void* ctx);
    bool (*windowOpen)(void* ctx);
    uint32_t (*records)(void* ctx);
    uint32_t (*lastSeq)(void* ctx);
    void* ctx;
    void (*holdReset)(bool hold, void* ctx);
    /** Reads the app's `index`-th held record back (0 = the oldest), the way the app itself would read
     *  it to send it: true and its number in *seq while there is one. The `read_back` command walks it
     *  from 0 and reports how many it read next to what `records` claims (verdict
     *  `record_count_matches_read_back`): a count that claims a record no copy holds any more is
     *  caught only this way (docs/your-firmware.md "Hooks"). */
    bool (*readRecord)(uint32_t index, uint32_t* seq, void* ctx);
};

class TestAgent {
public:
    TestAgent(const TestAgentInfo& info, const TestAgentApp& app);

    /** Call in setup() once the app has loaded what it keeps (its log, its settings): remembers the
     *  boot facts and the moment (`boot` begun_ms: how long the app's start took, verdict
     *  `startup_does_not_grow`); hello + boot go out once the host is connected. */
    void begin(uint32_t recordsRecovered, uint32_t lastSeq);
    /** Call from loop(): sends hello when due and executes commands. */
    void loop();

    // Events (safe from system event handlers: one write per line, no switching calls).
    void sysEvent(system_event_t event, int param);
    void guardAction(const char* action, uint32_t records, uint32_t lastSeq, bool withRecords);
    void appWorkload(bool busy);
    void appRecord(uint32_t seq, bool persisted);
    /** `event`: the name the record went out under (optional): the rig then checks that the cloud's
     *  copy of each such event names a record the app reported publishing (docs/your-firmware.md). */
    void appPublish(uint32_t seq, bool ok, const char* event = nullptr);
    void log(const char* msg);

    // The app's own OTA decisions, for an app without OtaGuard (docs/protocol.md `guard` events).
    /** Updates are let in (idle: true) or kept out (busy: false). */
    void window(bool open);
    /** The app has shut down cleanly for an update: its work is finished and persisted. */
    void shutdownComplete(uint32_t records, uint32_t lastSeq);
    /** A pending reset is held (System.disableReset()) or released (System.enableReset()). */
    void resetHeld(bool held);

private:
    void sendHelloBoot();
    /** Drops the rest of an over-long line, reading at most `backlog` bytes; true once its newline was seen. */
    bool skipOverlong(int& backlog);
    /** A newline arrived: handle the buffered line (one error if it was over-long) and start afresh. */
    void endLine();
    void handleLine(char* line, int len, bool overlong);
    void execute(JsonObject& cmd, long id, const char* name);
    void write(const char* line, int len);

    TestAgentInfo info_;
    TestAgentApp app_;
    bool helloSent_ = false;
    bool begun_ = false;
    int resetReason_ = 0;
    uint32_t begunMs_ = 0;
    uint32_t recordsRecovered_ = 0;
    uint32_t bootLastSeq_ = 0;
    char rx_[TESTAGENT_LINE_MAX];
    int rxLen_ = 0;
    bool rxOverlong_ = false;
};

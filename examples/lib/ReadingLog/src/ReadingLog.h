/*
 * ReadingLog: the work of the example apps (examples/apps/*): one reading at a time into a RAM
 * batch, the batch written to EEPROM ten at a time. What is still in RAM when the device resets is
 * lost; that is what an app's clean shutdown before an OTA reset is for (docs/your-firmware.md).
 */
#pragma once

#include "Particle.h"

class ReadingLog {
public:
    /** Told of each reading: taken (persisted false), then written (persisted true). */
    typedef void (*Observer)(uint32_t seq, bool persisted);

    /** Reads what EEPROM holds (address 0); call in setup(). */
    void begin(Observer observer);
    /** One reading into the batch; a full batch is written. */
    void take();
    /** Write the batch now (a shutdown). */
    void write();

    uint32_t count() const { return stored_.count; }      // readings in EEPROM
    uint32_t lastSeq() const { return stored_.lastSeq; }  // the last one written, 0 if none

private:
    static const uint32_t kBatch = 10;
    struct Stored {
        uint32_t magic;
        uint32_t count;
        uint32_t lastSeq;
    };
    Stored stored_ = {0, 0, 0};
    uint32_t pending_[kBatch];
    uint32_t pendingCount_ = 0;
    Observer observer_ = nullptr;
};

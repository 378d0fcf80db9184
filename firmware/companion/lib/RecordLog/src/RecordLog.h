/*
 * RecordLog: numbered records in EEPROM, so that a test can prove no record is lost across an
 * OTA reset (docs/design.md principle 5, "no record lost"). Layout: a header (magic, last_seq, count, head,
 * checksum) followed by a ring of fixed-size records. Records are written first and the header
 * last, so an interrupted append leaves the previous committed state readable.
 */
#pragma once

#include "Particle.h"

struct LogRecord {
    uint32_t seq;     // record number, 1-based, strictly increasing
    uint32_t t;       // device millis() when produced
    int32_t value;    // application payload (e.g. speed)
};

class RecordLog {
public:
    /** base/length select the EEPROM area; length 0 means "to the end of EEPROM". */
    explicit RecordLog(int base = 0, int length = 0) : base_(base), length_(length) {}

    /** Reads the header; formats an empty log when none is valid. Returns true if one was recovered. */
    bool begin();
    /** Erases the log (header only; the ring is overwritten lazily). */
    void format();
    /** Persists n records (a transaction); the header write is the commit point. */
    bool append(const LogRecord* recs, uint32_t n);

    uint32_t count() const { return count_; }      // records held (capped by capacity)
    uint32_t lastSeq() const { return lastSeq_; }  // highest persisted seq, 0 if none
    uint32_t capacity() const { return capacity_; }
    bool read(uint32_t index, LogRecord& out) const;  // 0 = oldest held record

private:
    struct Header {
        uint32_t magic;
        uint16_t version;
        uint16_t recordSize;
        uint32_t lastSeq;
        uint32_t count;
        uint32_t head;
        uint32_t check;
    };
    static uint32_t checksum(const Header& h);
    void writeHeader();
    int slotAddress(uint32_t slot) const;

    int base_;
    int length_;
    uint32_t capacity_ = 0;
    uint32_t lastSeq_ = 0;
    uint32_t count_ = 0;
    uint32_t head_ = 0;
};

/*
 * RecordLog: numbered records in EEPROM, so that a test can prove no record is lost across an OTA
 * reset or a power cut (docs/design.md principle 5, "no record lost").
 *
 * Why this layout: Device OS's emulated EEPROM commits a put with the last 4-byte flash record it
 * programs. Power lost inside that word can leave it reading as valid with some bits of its index or
 * value still unprogrammed (docs/reference/particle-ota.md §2.10), so one byte can take a wrong value:
 * the put's own first changed byte, or a byte whose index has every set bit of that byte's index and
 * more. A single header written last is therefore not a safe commit point. Instead every record
 * carries its own CRC and is written twice, once in each of two areas a stray byte cannot cross
 * between: copy A at 0x400-0x5FF (index bit 10 set, bit 9 clear) and copy B at 0x200-0x3FF (bit 9
 * set, bit 10 clear). A record is persisted once both copies are written; at boot it is there if
 * either copy checks, and a copy that does not is written again. Record `seq` lives in slot
 * (seq - 1) % 32 of each area; the log holds the last 31, so the slot being written never holds one
 * of them.
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
    static const uint32_t kSlots = 32;
    static const int kCopyA = 0x400;
    static const int kCopyB = 0x200;

    /** Reads both copies back; returns true if any record was recovered. */
    bool begin();
    /** Erases the log. */
    void format();
    /** Persists n records in order (both copies of each); returns false if nothing can be written. */
    bool append(const LogRecord* recs, uint32_t n);

    uint32_t count() const { return count_; }      // records held (at most capacity())
    uint32_t lastSeq() const { return lastSeq_; }  // highest persisted seq, 0 if none
    uint32_t capacity() const { return kSlots - 1; }
    bool read(uint32_t index, LogRecord& out) const;  // 0 = oldest held record

private:
    struct Stored {
        LogRecord rec;
        uint32_t crc;
    };
    static uint32_t crcOf(const LogRecord& r);
    static int slotAddress(int area, uint32_t seq);
    bool load(int area, uint32_t seq, LogRecord& out) const;
    bool held(uint32_t seq, LogRecord& out) const;
    void store(int area, const LogRecord& r);
    void recount();

    uint32_t lastSeq_ = 0;
    uint32_t count_ = 0;
};

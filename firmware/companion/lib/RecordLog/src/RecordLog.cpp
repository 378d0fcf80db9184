#include "RecordLog.h"

uint32_t RecordLog::crcOf(const LogRecord& r) {
    // CRC-32 (reflected, 0xEDB88320) over the record's bytes.
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&r);
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < sizeof(r); i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

int RecordLog::slotAddress(int area, uint32_t seq) {
    return area + (int)(((seq - 1) % kSlots) * sizeof(Stored));
}

bool RecordLog::load(int area, uint32_t seq, LogRecord& out) const {
    Stored s;
    EEPROM.get(slotAddress(area, seq), s);
    if (s.rec.seq != seq || s.crc != crcOf(s.rec)) return false;
    out = s.rec;
    return true;
}

bool RecordLog::held(uint32_t seq, LogRecord& out) const {
    return load(kCopyA, seq, out) || load(kCopyB, seq, out);
}

void RecordLog::store(int area, const LogRecord& r) {
    Stored s;
    s.rec = r;
    s.crc = crcOf(r);
    EEPROM.put(slotAddress(area, r.seq), s);
}

void RecordLog::recount() {
    count_ = 0;
    LogRecord r;
    for (uint32_t k = 0; k < capacity() && k < lastSeq_; k++) {
        if (held(lastSeq_ - k, r)) count_++;
    }
}

bool RecordLog::begin() {
    lastSeq_ = 0;
    for (int area : {kCopyA, kCopyB}) {
        for (uint32_t slot = 0; slot < kSlots; slot++) {
            Stored s;
            EEPROM.get(area + (int)(slot * sizeof(Stored)), s);
            if (s.rec.seq != 0 && (s.rec.seq - 1) % kSlots == slot && s.crc == crcOf(s.rec) &&
                s.rec.seq > lastSeq_) {
                lastSeq_ = s.rec.seq;
            }
        }
    }
    // A record with one good copy gets its other copy back, so a later cut cannot take the last one.
    LogRecord r;
    for (uint32_t k = 0; k < capacity() && k < lastSeq_; k++) {
        const uint32_t seq = lastSeq_ - k;
        if (!held(seq, r)) continue;
        LogRecord probe;
        if (!load(kCopyA, seq, probe)) store(kCopyA, r);
        if (!load(kCopyB, seq, probe)) store(kCopyB, r);
    }
    recount();
    return count_ > 0;
}

void RecordLog::format() {
    uint8_t blank[sizeof(Stored)];
    memset(blank, 0xFF, sizeof(blank));
    for (int area : {kCopyA, kCopyB}) {
        for (uint32_t slot = 0; slot < kSlots; slot++) EEPROM.put(area + (int)(slot * sizeof(Stored)), blank);
    }
    lastSeq_ = 0;
    count_ = 0;
}

bool RecordLog::append(const LogRecord* recs, uint32_t n) {
    if (!recs) return false;
    for (uint32_t i = 0; i < n; i++) {
        if (recs[i].seq <= lastSeq_) continue;  // numbers only go up: an old record is never rewritten
        store(kCopyA, recs[i]);
        store(kCopyB, recs[i]);  // persisted from here on
        lastSeq_ = recs[i].seq;
    }
    recount();
    return true;
}

bool RecordLog::read(uint32_t index, LogRecord& out) const {
    if (index >= count_) return false;
    uint32_t seen = 0;
    for (uint32_t k = capacity(); k > 0; k--) {
        if (lastSeq_ < k) continue;
        if (held(lastSeq_ - k + 1, out) && seen++ == index) return true;
    }
    return false;
}

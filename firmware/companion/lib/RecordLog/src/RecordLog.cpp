#include "RecordLog.h"

namespace {
const uint32_t kMagic = 0x4f54524cu;  // "OTRL"
const uint16_t kVersion = 1;
}  // namespace

uint32_t RecordLog::checksum(const Header& h) {
    // FNV-1a over every header field before `check`.
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&h);
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < offsetof(Header, check); i++) {
        x ^= p[i];
        x *= 16777619u;
    }
    return x;
}

int RecordLog::slotAddress(uint32_t slot) const {
    return base_ + (int)sizeof(Header) + (int)(slot * sizeof(LogRecord));
}

bool RecordLog::begin() {
    int len = length_ > 0 ? length_ : (int)EEPROM.length() - base_;
    int room = len - (int)sizeof(Header);
    capacity_ = room > 0 ? (uint32_t)room / sizeof(LogRecord) : 0;
    Header h;
    EEPROM.get(base_, h);
    if (h.magic == kMagic && h.version == kVersion && h.recordSize == sizeof(LogRecord) &&
        h.check == checksum(h) && h.count <= capacity_ && h.head < (capacity_ ? capacity_ : 1)) {
        lastSeq_ = h.lastSeq;
        count_ = h.count;
        head_ = h.head;
        return true;
    }
    format();
    return false;
}

void RecordLog::format() {
    lastSeq_ = 0;
    count_ = 0;
    head_ = 0;
    writeHeader();
}

void RecordLog::writeHeader() {
    Header h;
    memset(&h, 0, sizeof(h));
    h.magic = kMagic;
    h.version = kVersion;
    h.recordSize = sizeof(LogRecord);
    h.lastSeq = lastSeq_;
    h.count = count_;
    h.head = head_;
    h.check = checksum(h);
    EEPROM.put(base_, h);
}

bool RecordLog::append(const LogRecord* recs, uint32_t n) {
    if (!capacity_ || !recs) return false;
    uint32_t head = head_;
    uint32_t count = count_;
    uint32_t last = lastSeq_;
    for (uint32_t i = 0; i < n; i++) {
        EEPROM.put(slotAddress(head), recs[i]);
        head = (head + 1) % capacity_;
        if (count < capacity_) count++;
        if (recs[i].seq > last) last = recs[i].seq;
    }
    head_ = head;
    count_ = count;
    lastSeq_ = last;
    writeHeader();  // commit point
    return true;
}

bool RecordLog::read(uint32_t index, LogRecord& out) const {
    if (index >= count_) return false;
    uint32_t slot = (head_ + capacity_ - count_ + index) % capacity_;
    EEPROM.get(slotAddress(slot), out);
    return true;
}

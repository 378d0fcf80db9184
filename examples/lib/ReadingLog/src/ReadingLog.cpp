#include "ReadingLog.h"

namespace {
const uint32_t kMagic = 0x52444c47;  // "RDLG"
}

void ReadingLog::begin(Observer observer) {
    observer_ = observer;
    EEPROM.get(0, stored_);
    if (stored_.magic != kMagic) stored_ = {kMagic, 0, 0};
}

void ReadingLog::take() {
    const uint32_t seq = stored_.lastSeq + pendingCount_ + 1;
    pending_[pendingCount_++] = seq;
    if (observer_) observer_(seq, false);
    if (pendingCount_ == kBatch) write();
}

void ReadingLog::write() {
    if (pendingCount_ == 0) return;
    stored_.count += pendingCount_;
    stored_.lastSeq = pending_[pendingCount_ - 1];
    EEPROM.put(0, stored_);  // the commit point: one write of the header
    for (uint32_t i = 0; i < pendingCount_; i++) {
        if (observer_) observer_(pending_[i], true);
    }
    pendingCount_ = 0;
}

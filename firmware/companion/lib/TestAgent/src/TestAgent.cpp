#include "TestAgent.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>

// ---------------------------------------------------------------------------------------------
// Line builder: snprintf into a fixed buffer; a field that does not fit is dropped, so a line
// never exceeds TESTAGENT_LINE_MAX (docs/protocol.md "Framing").

class JsonLine {
public:
    // "t" is filled in by finish(), so it is the time the line goes out (keeps the log in order).
    explicit JsonLine(const char* ev) : ev_(ev) {}
    JsonLine& num(const char* key, long v) { return raw(key, "%ld", v); }
    JsonLine& unum(const char* key, unsigned long v) { return raw(key, "%lu", v); }
    JsonLine& boolean(const char* key, bool v) { return raw(key, "%s", v ? "true" : "false"); }
    JsonLine& strings(const char* key, const char* const* items, int n) {
        char list[160];
        size_t o = 0;
        list[o++] = '[';
        for (int i = 0; i < n && o + strlen(items[i]) + 4 < sizeof(list); i++) {
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"", i ? "," : "", items[i]);
        }
        snprintf(list + o, sizeof(list) - o, "]");
        return raw(key, "%s", list);
    }
    JsonLine& str(const char* key, const char* v) {
        char esc[200];
        escape(v, esc, sizeof(esc));
        return raw(key, "\"%s\"", esc);
    }
    /** Terminates the line; returns its length including "}\n". */
    int finish() {
        int n = snprintf(out_, sizeof(out_), "{\"ev\":\"%s\",\"t\":%lu%s}\n", ev_, (unsigned long)millis(), buf_);
        return n < (int)sizeof(out_) ? n : (int)sizeof(out_) - 1;
    }
    const char* data() const { return out_; }

    static void escape(const char* in, char* out, size_t outlen) {
        size_t o = 0;
        for (const unsigned char* p = (const unsigned char*)(in ? in : ""); *p && o + 7 < outlen; p++) {
            if (*p == '"' || *p == '\\') {
                out[o++] = '\\';
                out[o++] = (char)*p;
            } else if (*p < 0x20 || *p >= 0x7f) {
                o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", *p);  // keeps lines ASCII
            } else {
                out[o++] = (char)*p;
            }
        }
        out[o] = 0;
    }

private:
    JsonLine& raw(const char* key, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
        char val[240];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(val, sizeof(val), fmt, ap);
        va_end(ap);
        // room for ,"key":val; the header ({"ev":..,"t":..) and "}\n" are reserved (kHeadRoom)
        size_t need = strlen(key) + strlen(val) + 4;
        if (n_ + need + kHeadRoom + strlen(ev_) < TESTAGENT_LINE_MAX) {
            n_ += snprintf(buf_ + n_, sizeof(buf_) - n_, ",\"%s\":%s", key, val);
        }
        return *this;
    }
    static const size_t kHeadRoom = 32;  // {"ev":"","t":4294967295}\n
    const char* ev_;
    char buf_[TESTAGENT_LINE_MAX + 1] = {0};
    char out_[TESTAGENT_LINE_MAX + 1];
    size_t n_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Flat JSON object reader for commands: string, number, true/false/null values; nested values
// are skipped. Anything else makes the line noise.

class JsonObject {
public:
    enum Type { NONE, STRING, INTEGER, NUMBER, BOOL, NUL, OTHER };
    struct Field {
        const char* key;
        Type type;
        const char* s;
        long i;
        bool b;
    };

    bool parse(const char* p, int len) {
        p_ = p;
        end_ = p + len;
        count_ = 0;
        used_ = 0;
        ws();
        if (!eat('{')) return false;
        ws();
        if (eat('}')) return trailing();
        for (;;) {
            ws();
            const char* key = nullptr;
            if (!string(&key)) return false;
            ws();
            if (!eat(':')) return false;
            ws();
            Field f = {key, NONE, nullptr, 0, false};
            if (!value(f)) return false;
            if (count_ < kMaxFields) fields_[count_++] = f;
            ws();
            if (eat(',')) continue;
            if (eat('}')) return trailing();
            return false;
        }
    }

    const Field* get(const char* key) const {
        for (int i = 0; i < count_; i++) {
            if (strcmp(fields_[i].key, key) == 0) return &fields_[i];
        }
        return nullptr;
    }

private:
    static const int kMaxFields = 16;

    bool trailing() {
        ws();
        return p_ == end_;
    }
    void ws() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n')) p_++;
    }
    bool eat(char c) {
        if (p_ < end_ && *p_ == c) {
            p_++;
            return true;
        }
        return false;
    }
    bool put(char c) {
        if (used_ + 1 >= sizeof(store_)) return false;
        store_[used_++] = c;
        return true;
    }
    bool string(const char** out) {
        if (!eat('"')) return false;
        *out = store_ + used_;
        while (p_ < end_) {
            unsigned char c = (unsigned char)*p_++;
            if (c == '"') return put(0);
            if (c < 0x20) return false;
            if (c != '\\') {
                if (!put((char)c)) return false;
                continue;
            }
            if (p_ >= end_) return false;
            char e = *p_++;
            switch (e) {
                case '"': case '\\': case '/': if (!put(e)) return false; break;
                case 'b': if (!put('\b')) return false; break;
                case 'f': if (!put('\f')) return false; break;
                case 'n': if (!put('\n')) return false; break;
                case 'r': if (!put('\r')) return false; break;
                case 't': if (!put('\t')) return false; break;
                case 'u': {
                    if (end_ - p_ < 4) return false;
                    unsigned v = 0;
                    for (int k = 0; k < 4; k++) {
                        char h = *p_++;
                        if (!isxdigit((unsigned char)h)) return false;
                        v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
                    }
                    if (!put(v < 0x80 && v > 0 ? (char)v : '?')) return false;  // commands are ASCII
                    break;
                }
                default: return false;
            }
        }
        return false;
    }
    bool literal(const char* word) {
        size_t n = strlen(word);
        if ((size_t)(end_ - p_) < n || strncmp(p_, word, n) != 0) return false;
        p_ += n;
        return true;
    }
    bool number(Field& f) {
        const char* start = p_;
        bool integer = true;
        eat('-');
        if (p_ >= end_ || !isdigit((unsigned char)*p_)) return false;
        while (p_ < end_ && isdigit((unsigned char)*p_)) p_++;
        if (eat('.')) {
            integer = false;
            if (p_ >= end_ || !isdigit((unsigned char)*p_)) return false;
            while (p_ < end_ && isdigit((unsigned char)*p_)) p_++;
        }
        if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
            integer = false;
            p_++;
            if (!eat('+')) eat('-');
            if (p_ >= end_ || !isdigit((unsigned char)*p_)) return false;
            while (p_ < end_ && isdigit((unsigned char)*p_)) p_++;
        }
        char tmp[32];
        size_t n = (size_t)(p_ - start);
        if (n >= sizeof(tmp)) {
            integer = false;
            n = sizeof(tmp) - 1;
        }
        memcpy(tmp, start, n);
        tmp[n] = 0;
        f.type = integer ? INTEGER : NUMBER;
        f.i = integer ? strtol(tmp, nullptr, 10) : (long)strtod(tmp, nullptr);
        return true;
    }
    bool skipNested(int depth) {
        // Skips an object or array after its opening bracket, strings included.
        while (p_ < end_ && depth > 0) {
            char c = *p_++;
            if (c == '"') {
                while (p_ < end_ && *p_ != '"') {
                    if (*p_ == '\\') p_++;
                    p_++;
                }
                if (p_ >= end_) return false;
                p_++;
            } else if (c == '{' || c == '[') {
                if (++depth > 8) return false;
            } else if (c == '}' || c == ']') {
                depth--;
            }
        }
        return depth == 0;
    }
    bool value(Field& f) {
        if (p_ >= end_) return false;
        char c = *p_;
        if (c == '"') {
            f.type = STRING;
            return string(&f.s);
        }
        if (c == '-' || isdigit((unsigned char)c)) return number(f);
        if (literal("true")) { f.type = BOOL; f.b = true; return true; }
        if (literal("false")) { f.type = BOOL; f.b = false; return true; }
        if (literal("null")) { f.type = NUL; return true; }
        if (c == '{' || c == '[') {
            p_++;
            f.type = OTHER;
            return skipNested(1);
        }
        return false;
    }

    const char* p_ = nullptr;
    const char* end_ = nullptr;
    Field fields_[kMaxFields];
    int count_ = 0;
    char store_[TESTAGENT_LINE_MAX + 8];
    size_t used_ = 0;
};

// ---------------------------------------------------------------------------------------------

namespace {

/** `read_back` stops here: a hook that never says "no more" must not hang the agent. */
const uint32_t kReadBackMax = 4096;

const char* modeName(System_Mode_TypeDef m) {
    switch (m) {
        case AUTOMATIC: return "AUTOMATIC";
        case SEMI_AUTOMATIC: return "SEMI_AUTOMATIC";
        case MANUAL: return "MANUAL";
        case SAFE_MODE: return "SAFE_MODE";
        default: return "AUTOMATIC";  // DEFAULT behaves as AUTOMATIC
    }
}

const char* resetReasonName(int r) {
    switch (r) {
        case RESET_REASON_NONE: return "none";
        case RESET_REASON_UNKNOWN: return "unknown";
        case RESET_REASON_PIN_RESET: return "pin_reset";
        case RESET_REASON_POWER_MANAGEMENT: return "power_management";
        case RESET_REASON_POWER_DOWN: return "power_down";
        case RESET_REASON_POWER_BROWNOUT: return "power_brownout";
        case RESET_REASON_WATCHDOG: return "watchdog";
        case RESET_REASON_UPDATE: return "update";
        case RESET_REASON_UPDATE_ERROR: return "update_error";
        case RESET_REASON_UPDATE_TIMEOUT: return "update_timeout";
        case RESET_REASON_FACTORY_RESET: return "factory_reset";
        case RESET_REASON_SAFE_MODE: return "safe_mode";
        case RESET_REASON_DFU_MODE: return "dfu_mode";
        case RESET_REASON_PANIC: return "panic";
        case RESET_REASON_USER: return "user";
        default: return "unknown";
    }
}

const char* wakeReasonName(SystemSleepWakeupReason r) {
    switch (r) {
        case SystemSleepWakeupReason::BY_GPIO: return "gpio";
        case SystemSleepWakeupReason::BY_RTC: return "rtc";
        case SystemSleepWakeupReason::BY_NETWORK: return "network";
        case SystemSleepWakeupReason::BY_USART: return "usart";
        case SystemSleepWakeupReason::BY_ADC: return "adc";
        case SystemSleepWakeupReason::BY_LPCOMP: return "lpcomp";
        default: return "unknown";
    }
}

const char* firmwareParamName(int param) {
    // if/else, not switch: firmware_update_failed is (uint32_t)-1, not a valid int case label.
    if (param == (int)firmware_update_begin) return "begin";
    if (param == (int)firmware_update_complete) return "complete";
    if (param == (int)firmware_update_progress) return "progress";
    if (param == (int)firmware_update_failed) return "failed";
    return "unknown";
}

const char* cloudParamName(int param) {
    switch (param) {
        case cloud_status_disconnected: return "disconnected";
        case cloud_status_connecting: return "connecting";
        case cloud_status_handshake: return "handshake";
        case cloud_status_session_resume: return "session_resume";
        case cloud_status_connected: return "connected";
        case cloud_status_disconnecting: return "disconnecting";
        default: return "unknown";
    }
}

// Lax search for "id": N in a line that is not valid JSON (docs/protocol.md: reply where an id
// can be read). Returns false when none is found.
bool findId(const char* line, int len, long* id) {
    for (int i = 0; i + 4 <= len; i++) {
        if (memcmp(line + i, "\"id\"", 4) != 0) continue;
        int j = i + 4;
        while (j < len && (line[j] == ' ' || line[j] == '\t')) j++;
        if (j >= len || line[j] != ':') continue;
        j++;
        while (j < len && (line[j] == ' ' || line[j] == '\t')) j++;
        int k = j;
        if (k < len && line[k] == '-') k++;
        if (k >= len || !isdigit((unsigned char)line[k])) continue;
        char tmp[16];
        int n = 0;
        while (j < len && n < 15 && (line[j] == '-' || isdigit((unsigned char)line[j]))) tmp[n++] = line[j++];
        tmp[n] = 0;
        *id = strtol(tmp, nullptr, 10);
        return true;
    }
    return false;
}

}  // namespace

// Defined by the app's PRODUCT_VERSION(x) (Device OS 2.3.1 wiring/inc/spark_wiring_version.h:48, and
// firmware/host/Particle.h): the version the module carries. Weak, so an app without the macro links
// and the agent sees that it declares none.
extern uint16_t __system_product_version __attribute__((weak));

TestAgent::TestAgent(const TestAgentInfo& info, const TestAgentApp& app) : info_(info), app_(app) {
#ifdef OTARIG_PRODUCT_ID
    info_.productId = OTARIG_PRODUCT_ID;
#endif
    // hello reports the product version the module carries, never one it does not: without
    // PRODUCT_VERSION(x) that is 0xFFFF, the field's value in a module and the HELLO's default
    // (device-os v2.3.1 build/arm/linker/module_end.ld:5-6, communication/import.mk:14)
    info_.productVersion = &__system_product_version != nullptr ? (int)__system_product_version : 0xFFFF;
}

void TestAgent::write(const char* line, int len) {
    // Nothing before hello: hello is the first line after boot (docs/protocol.md "Versioning").
    // It goes out with the first line once the host listens, not only from loop(): a non-threaded
    // SEMI_AUTOMATIC app gets no loop() while the cloud connection it asked for is being made, nor
    // during a download (docs/reference/particle-ota.md §2.8, §3.1; device-os v2.3.1
    // system/src/main.cpp:450-452, :474-480), and the system events of that boot (a forced update
    // begun at the handshake) would otherwise be lost.
    if (!helloSent_) {
        if (!begun_ || !Serial.isConnected()) return;
        sendHelloBoot();  // sets helloSent_ first, then writes hello and boot through here
    }
    Serial.write((const uint8_t*)line, (size_t)len);
}

void TestAgent::begin(uint32_t recordsRecovered, uint32_t lastSeq) {
    Serial.begin(115200);
    begunMs_ = millis();
    resetReason_ = System.resetReason();
    recordsRecovered_ = recordsRecovered;
    bootLastSeq_ = lastSeq;
    begun_ = true;
    if (Serial.isConnected()) sendHelloBoot();
}

void TestAgent::sendHelloBoot() {
    helloSent_ = true;
    const uint32_t v = System.versionNumber();
    char os[16];
    snprintf(os, sizeof(os), "%u.%u.%u", (unsigned)(v >> 24) & 0xff, (unsigned)(v >> 16) & 0xff,
             (unsigned)(v >> 8) & 0xff);
    JsonLine h("hello");
    h.num("proto", TESTAGENT_PROTO).str("agent", "otarig-companion").num("product_id", info_.productId);
    h.num("product_version", info_.productVersion).str("device_os", os).boolean("threaded", info_.threaded);
    h.str("mode", modeName(System.mode()));
    const char* hooks[5];
    int k = 0;
    if (app_.setWorkload) hooks[k++] = "workload";
    if (app_.windowOpen) hooks[k++] = "window";
    if (app_.records && app_.lastSeq) hooks[k++] = "records";
    if (app_.holdReset) hooks[k++] = "reset_hold";
    if (app_.readRecord) hooks[k++] = "read_back";
    h.strings("hooks", hooks, k);
    if (info_.recordPeriodMs) h.unum("record_period_ms", info_.recordPeriodMs);
    if (info_.recordCopies) h.unum("record_copies", info_.recordCopies);
    if (info_.publishEveryMs) h.unum("publish_every_ms", info_.publishEveryMs);
    int n = h.finish();
    write(h.data(), n);
    JsonLine b("boot");
    b.str("reset_reason", resetReasonName(resetReason_)).num("reset_reason_code", resetReason_);
    b.unum("records_recovered", recordsRecovered_).unum("last_seq", bootLastSeq_);
    b.unum("begun_ms", begunMs_);
    // Guard state at this instant: decisions taken before the host could listen are not lost.
    b.boolean("window_open", app_.windowOpen && app_.windowOpen(app_.ctx));
    n = b.finish();
    write(b.data(), n);
}

void TestAgent::loop() {
    if (!begun_) return;
    if (!helloSent_) {
        if (!Serial.isConnected()) return;
        sendHelloBoot();
    }
    // Bounded per loop so that a flood of input cannot starve the app. Bytes of an over-long line
    // are not parsed, so skipping them is outside that budget (docs/protocol.md "Framing"): else a
    // 1 MB line would hold the next command back for 1 MB / 2048 loops (minutes when parked).
    int backlog = Serial.available();
    for (int budget = 2048; budget > 0; budget--) {
        if (rxOverlong_ && !skipOverlong(backlog)) break;
        int c = Serial.read();
        if (c < 0) break;
        backlog--;
        if (c == '\n') {
            endLine();
            continue;
        }
        // Keep at most LINE_MAX-1 bytes (the newline makes LINE_MAX); beyond that the line is noise.
        if (rxLen_ < TESTAGENT_LINE_MAX - 1) {
            rx_[rxLen_++] = (char)c;
        } else {
            rxOverlong_ = true;
        }
    }
}

bool TestAgent::skipOverlong(int& backlog) {
    // Only what had already arrived when this loop began: a sender that never stops cannot keep
    // the loop here, and a real USB CDC buffer holds little, so this stays short on hardware too.
    while (backlog > 0) {
        int c = Serial.read();
        if (c < 0) return false;
        backlog--;
        if (c == '\n') {
            endLine();  // the one error for the whole line
            return true;
        }
    }
    return false;
}

void TestAgent::endLine() {
    int len = rxLen_;
    if (!rxOverlong_ && len > 0 && rx_[len - 1] == '\r') len--;
    if (len > 0 || rxOverlong_) handleLine(rx_, len, rxOverlong_);
    rxLen_ = 0;
    rxOverlong_ = false;
}

void TestAgent::handleLine(char* line, int len, bool overlong) {
    JsonObject cmd;
    long id = -1;
    if (overlong) {
        if (findId(line, len, &id)) {
            JsonLine r("reply");
            r.num("id", id).str("cmd", "").boolean("ok", false).str("error", "line longer than 512 bytes");
            int n = r.finish();
            write(r.data(), n);
        } else {
            log("discarded: line longer than 512 bytes");
        }
        return;
    }
    if (!cmd.parse(line, len)) {
        if (findId(line, len, &id)) {
            JsonLine r("reply");
            r.num("id", id).str("cmd", "").boolean("ok", false).str("error", "invalid JSON object");
            int n = r.finish();
            write(r.data(), n);
        } else {
            log("discarded: not a JSON object");
        }
        return;
    }
    const JsonObject::Field* fid = cmd.get("id");
    const JsonObject::Field* fcmd = cmd.get("cmd");
    const char* name = (fcmd && fcmd->type == JsonObject::STRING) ? fcmd->s : "";
    char shortName[33];
    snprintf(shortName, sizeof(shortName), "%s", name);
    if (!fid || fid->type != JsonObject::INTEGER) {
        JsonLine r("reply");
        r.num("id", -1).str("cmd", shortName).boolean("ok", false);
        r.str("error", fid ? "bad key id: expected an integer" : "missing key id");
        int n = r.finish();
        write(r.data(), n);
        return;
    }
    id = fid->i;
    if (!fcmd || fcmd->type != JsonObject::STRING) {
        JsonLine r("reply");
        r.num("id", id).str("cmd", "").boolean("ok", false);
        r.str("error", fcmd ? "bad key cmd: expected a string" : "missing key cmd");
        int n = r.finish();
        write(r.data(), n);
        return;
    }
    execute(cmd, id, shortName);
}

void TestAgent::execute(JsonObject& cmd, long id, const char* name) {
    JsonLine r("reply");
    r.num("id", id).str("cmd", name);
    auto fail = [&](const char* error) {
        r.boolean("ok", false).str("error", error);
        int n = r.finish();
        write(r.data(), n);
    };
    auto send = [&]() {
        int n = r.finish();
        write(r.data(), n);
    };

    if (strcmp(name, "ping") == 0) {
        const uint32_t v = System.versionNumber();
        char os[16];
        snprintf(os, sizeof(os), "%u.%u.%u", (unsigned)(v >> 24) & 0xff, (unsigned)(v >> 16) & 0xff,
                 (unsigned)(v >> 8) & 0xff);
        r.boolean("ok", true).num("proto", TESTAGENT_PROTO).str("agent", "otarig-companion");
        r.num("product_id", info_.productId).num("product_version", info_.productVersion).str("device_os", os);
        r.boolean("threaded", info_.threaded).str("mode", modeName(System.mode()));
        if (info_.recordPeriodMs) r.unum("record_period_ms", info_.recordPeriodMs);
        if (info_.recordCopies) r.unum("record_copies", info_.recordCopies);
        if (info_.publishEveryMs) r.unum("publish_every_ms", info_.publishEveryMs);
        send();
    } else if (strcmp(name, "status") == 0) {
        r.boolean("ok", true).num("product_version", info_.productVersion);
        r.boolean("updates_enabled", System.updatesEnabled()).boolean("updates_pending", System.updatesPending());
        r.boolean("updates_forced", System.updatesForced()).boolean("reset_enabled", System.resetEnabled());
        r.boolean("reset_pending", System.resetPending());
        r.boolean("window_open", app_.windowOpen ? app_.windowOpen(app_.ctx) : false);
        r.str("workload", (app_.busy && app_.busy(app_.ctx)) ? "busy" : "idle");
        r.unum("records", app_.records ? app_.records(app_.ctx) : 0);
        r.unum("last_seq", app_.lastSeq ? app_.lastSeq(app_.ctx) : 0);
        r.boolean("cloud_connected", Particle.connected()).boolean("cellular_ready", Cellular.ready());
        r.unum("uptime_ms", (unsigned long)System.millis());
        if (info_.recordPeriodMs) r.unum("record_period_ms", info_.recordPeriodMs);  // the hello's, for a rig that joins later
        if (info_.recordCopies) r.unum("record_copies", info_.recordCopies);
        if (info_.publishEveryMs) r.unum("publish_every_ms", info_.publishEveryMs);
        send();
    } else if (strcmp(name, "workload") == 0) {
        const JsonObject::Field* st = cmd.get("state");
        if (!st) return fail("missing key state");
        if (st->type != JsonObject::STRING || (strcmp(st->s, "busy") != 0 && strcmp(st->s, "idle") != 0)) {
            return fail("bad key state: expected busy or idle");
        }
        bool busy = strcmp(st->s, "busy") == 0;
        if (!app_.setWorkload) return fail("not supported by this firmware: no TestAgentApp.setWorkload hook");
        if (!app_.setWorkload(busy, app_.ctx)) return fail("workload refused by the app");
        r.boolean("ok", true).str("state", busy ? "busy" : "idle");
        send();
    } else if (strcmp(name, "read_back") == 0) {
        if (!app_.readRecord) return fail("not supported by this firmware: no TestAgentApp.readRecord hook");
        // The app reads its records back, oldest first, as it would to send them; the count it claims
        // is taken at the same instant (no loop() runs in between).
        uint32_t readable = 0, first = 0, last = 0, seq = 0;
        bool inOrder = true;
        while (readable < kReadBackMax && app_.readRecord(readable, &seq, app_.ctx)) {
            if (readable == 0) first = seq;
            else if (seq <= last) inOrder = false;
            last = seq;
            readable++;
        }
        r.boolean("ok", true).unum("readable", readable);
        if (readable) r.unum("first_seq", first).unum("last_seq", last);
        r.boolean("in_order", inOrder);
        if (app_.records) r.unum("records", app_.records(app_.ctx));
        send();
    } else if (strcmp(name, "reset_hold") == 0) {
        const JsonObject::Field* h = cmd.get("hold");
        if (!h) return fail("missing key hold");
        if (h->type != JsonObject::BOOL) return fail("bad key hold: expected true or false");
        if (!app_.holdReset) return fail("not supported by this firmware: no TestAgentApp.holdReset hook");
        app_.holdReset(h->b, app_.ctx);
        r.boolean("ok", true).boolean("hold", h->b);
        send();
    } else if (strcmp(name, "cloud") == 0) {
        const JsonObject::Field* a = cmd.get("action");
        if (!a) return fail("missing key action");
        if (a->type != JsonObject::STRING || (strcmp(a->s, "connect") != 0 && strcmp(a->s, "disconnect") != 0)) {
            return fail("bad key action: expected connect or disconnect");
        }
        if (strcmp(a->s, "connect") == 0) {
            Particle.connect();
        } else {
            Particle.disconnect();
        }
        r.boolean("ok", true);
        send();
    } else if (strcmp(name, "cellular") == 0) {
        const JsonObject::Field* a = cmd.get("action");
        if (!a) return fail("missing key action");
        if (a->type != JsonObject::STRING || (strcmp(a->s, "on") != 0 && strcmp(a->s, "off") != 0)) {
            return fail("bad key action: expected on or off");
        }
        if (strcmp(a->s, "on") == 0) {
            Cellular.on();
        } else {
            Cellular.off();
        }
        r.boolean("ok", true);
        send();
    } else if (strcmp(name, "sleep") == 0) {
        const JsonObject::Field* m = cmd.get("mode");
        const JsonObject::Field* s = cmd.get("seconds");
        const JsonObject::Field* ns = cmd.get("network_standby");
        const JsonObject::Field* cw = cmd.get("cellular_wake");
        if (!m) return fail("missing key mode");
        SystemSleepMode mode;
        if (m->type == JsonObject::STRING && strcmp(m->s, "stop") == 0) {
            mode = SystemSleepMode::STOP;
        } else if (m->type == JsonObject::STRING && strcmp(m->s, "ulp") == 0) {
            mode = SystemSleepMode::ULTRA_LOW_POWER;
        } else if (m->type == JsonObject::STRING && strcmp(m->s, "hibernate") == 0) {
            mode = SystemSleepMode::HIBERNATE;
        } else {
            return fail("bad key mode: expected stop, ulp or hibernate");
        }
        if (!s) return fail("missing key seconds");
        if (s->type != JsonObject::INTEGER || s->i < 0 || s->i > 0x3fffffffL / 1000) {
            return fail("bad key seconds: expected a non-negative integer");
        }
        if (ns && ns->type != JsonObject::BOOL) return fail("bad key network_standby: expected a bool");
        if (cw && cw->type != JsonObject::BOOL) return fail("bad key cellular_wake: expected a bool");
        const bool standby = ns && ns->b;
        const bool cellWake = cw && cw->b;
        const long seconds = s->i;
        r.boolean("ok", true);
        send();  // docs/protocol.md: the reply goes out before sleeping
        // docs/reference/particle-ota.md §3.2: new sleep API; WKP always wakes (the bench pulses it).
        SystemSleepConfiguration config;
        config.mode(mode).gpio(WKP, RISING);
        if (seconds > 0) config.duration(std::chrono::seconds(seconds));
        if (cellWake) {
            config.network(NETWORK_INTERFACE_CELLULAR);
        } else if (standby) {
            config.network(NETWORK_INTERFACE_CELLULAR, SystemSleepNetworkFlag::INACTIVE_STANDBY);
        }
        SystemSleepResult result = System.sleep(config);
        JsonLine w("log");
        w.str("msg", "wake").str("reason", wakeReasonName(result.wakeupReason()));
        w.num("reason_code", (long)result.wakeupReason());
        int n = w.finish();
        write(w.data(), n);
    } else if (strcmp(name, "delay") == 0) {
        const JsonObject::Field* ms = cmd.get("ms");
        if (!ms) return fail("missing key ms");
        if (ms->type != JsonObject::INTEGER || ms->i < 0 || ms->i > 0x3fffffffL) {
            return fail("bad key ms: expected a non-negative integer");
        }
        const uint32_t wait = (uint32_t)ms->i;
        r.boolean("ok", true).unum("ms", wait);
        send();  // docs/protocol.md: the reply goes out before the delay
        // The app's current loop() pass lasts that long, as a long delay() in a product's loop does: a
        // threaded app takes its queued system events inside it, several in one pass
        // (docs/reference/particle-ota.md §2.2, §8.16); a non-threaded one runs the system's loop in it.
        delay(wait);
        JsonLine w("log");
        w.str("msg", "delay_end").unum("ms", wait);
        int n = w.finish();
        write(w.data(), n);
    } else if (strcmp(name, "reset") == 0) {
        r.boolean("ok", true);
        send();  // docs/protocol.md: the reply goes out before System.reset()
        System.reset();
    } else {
        char msg[80];
        snprintf(msg, sizeof(msg), "unknown cmd: %s", name);
        fail(msg);
    }
}

void TestAgent::sysEvent(system_event_t event, int param) {
    const char* name = nullptr;
    const char* pname = nullptr;
    if (event & firmware_update) {
        name = "firmware_update";
        pname = firmwareParamName(param);
    } else if (event & firmware_update_pending) {
        name = "firmware_update_pending";
    } else if (event & reset_pending) {
        name = "reset_pending";
    } else if (event & reset) {
        name = "reset";
    } else if (event & cloud_status) {
        name = "cloud_status";
        pname = cloudParamName(param);
    } else {
        return;
    }
    JsonLine l("sys");
    l.str("event", name);
    if (pname) l.str("param", pname);
    l.num("code", param);
    int n = l.finish();
    write(l.data(), n);
}

void TestAgent::guardAction(const char* action, uint32_t records, uint32_t lastSeq, bool withRecords) {
    JsonLine l("guard");
    l.str("action", action);
    if (withRecords) l.unum("records", records).unum("last_seq", lastSeq);
    int n = l.finish();
    write(l.data(), n);
}

void TestAgent::appWorkload(bool busy) {
    JsonLine l("app");
    l.str("action", "workload").str("state", busy ? "busy" : "idle");
    int n = l.finish();
    write(l.data(), n);
}

void TestAgent::appRecord(uint32_t seq, bool persisted) {
    JsonLine l("app");
    l.str("action", "record").unum("seq", seq).boolean("persisted", persisted);
    int n = l.finish();
    write(l.data(), n);
}

void TestAgent::appPublish(uint32_t seq, bool ok, const char* event) {
    JsonLine l("app");
    l.str("action", "publish").unum("seq", seq).boolean("ok", ok);
    if (event) l.str("event", event);
    int n = l.finish();
    write(l.data(), n);
}

void TestAgent::log(const char* msg) {
    JsonLine l("log");
    l.str("msg", msg);
    int n = l.finish();
    write(l.data(), n);
}

void TestAgent::window(bool open) { guardAction(open ? "window_open" : "window_close", 0, 0, false); }

void TestAgent::shutdownComplete(uint32_t records, uint32_t lastSeq) {
    guardAction("shutdown_complete", records, lastSeq, true);
}

void TestAgent::resetHeld(bool held) { guardAction(held ? "reset_held" : "reset_released", 0, 0, false); }

// Wiring String for the host build (see spark_wiring_string.h).
#include "spark_wiring_string.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {
std::string to_base(unsigned long v, unsigned char base, bool neg) {
    if (base < 2 || base > 36) base = 10;
    char buf[72];
    int i = (int)sizeof(buf) - 1;
    buf[i] = 0;
    do {
        int d = (int)(v % base);
        buf[--i] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v && i > 1);
    if (neg) buf[--i] = '-';
    return std::string(&buf[i]);
}
}  // namespace

String::String(unsigned char v, unsigned char base) : s_(to_base(v, base, false)) {}
String::String(int v, unsigned char base)
    : s_(base == 10 && v < 0 ? to_base(0ul - (unsigned long)(long)v, 10, true) : to_base((unsigned)v, base, false)) {}
String::String(unsigned int v, unsigned char base) : s_(to_base(v, base, false)) {}
String::String(long v, unsigned char base)
    : s_(base == 10 && v < 0 ? to_base(0ul - (unsigned long)v, 10, true) : to_base((unsigned long)v, base, false)) {}
String::String(unsigned long v, unsigned char base) : s_(to_base(v, base, false)) {}
String::String(float v, int decimalPlaces) : String((double)v, decimalPlaces) {}
String::String(double v, int decimalPlaces) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", decimalPlaces < 0 ? 0 : decimalPlaces, v);
    s_ = buf;
}

String String::format(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    String r;
    if (n > 0) {
        r.s_.resize((size_t)n + 1);
        vsnprintf(&r.s_[0], (size_t)n + 1, fmt, ap2);
        r.s_.resize((size_t)n);
    }
    va_end(ap2);
    return r;
}

bool String::equalsIgnoreCase(const String& o) const {
    return s_.size() == o.s_.size() && strncasecmp(s_.c_str(), o.s_.c_str(), s_.size()) == 0;
}

String String::substring(unsigned from, unsigned to) const {
    if (from > to) { unsigned t = from; from = to; to = t; }
    if (from >= s_.size()) return String();
    if (to > s_.size()) to = (unsigned)s_.size();
    return String(s_.substr(from, to - from).c_str());
}

String& String::replace(const String& find, const String& repl) {
    if (find.s_.empty()) return *this;
    size_t pos = 0;
    while ((pos = s_.find(find.s_, pos)) != std::string::npos) {
        s_.replace(pos, find.s_.size(), repl.s_);
        pos += repl.s_.size();
    }
    return *this;
}

String& String::remove(unsigned index, unsigned count) {
    if (index < s_.size()) s_.erase(index, count);
    return *this;
}

String& String::toLowerCase() { for (auto& c : s_) c = (char)tolower((unsigned char)c); return *this; }
String& String::toUpperCase() { for (auto& c : s_) c = (char)toupper((unsigned char)c); return *this; }

String& String::trim() {
    size_t b = 0, e = s_.size();
    while (b < e && isspace((unsigned char)s_[b])) b++;
    while (e > b && isspace((unsigned char)s_[e - 1])) e--;
    s_ = s_.substr(b, e - b);
    return *this;
}

long String::toInt() const { return strtol(s_.c_str(), nullptr, 10); }
float String::toFloat() const { return strtof(s_.c_str(), nullptr); }

void String::getBytes(unsigned char* buf, unsigned len, unsigned index) const {
    if (!buf || !len) return;
    unsigned n = 0;
    while (index + n < s_.size() && n + 1 < len) { buf[n] = (unsigned char)s_[index + n]; n++; }
    buf[n] = 0;
}

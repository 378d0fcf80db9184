// Print for the host build (see spark_wiring_print.h).
#include "spark_wiring_print.h"

#include <stdio.h>
#include <string>

size_t Print::write(const uint8_t* buf, size_t len) {
    size_t n = 0;
    while (len--) n += write(*buf++);
    return n;
}

size_t Print::print(long v, int base) { return print(String(v, (unsigned char)base)); }
size_t Print::print(unsigned long v, int base) { return print(String(v, (unsigned char)base)); }
size_t Print::print(double v, int digits) { return print(String(v, digits)); }

size_t Print::vprintf(bool newline, const char* fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(nullptr, 0, fmt, ap2);
    va_end(ap2);
    std::string s;
    if (n > 0) {
        s.resize((size_t)n + 1);
        vsnprintf(&s[0], (size_t)n + 1, fmt, ap);
        s.resize((size_t)n);
    }
    if (newline) s += "\r\n";
    return write((const uint8_t*)s.data(), s.size());
}

size_t Print::printf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vprintf(false, fmt, ap);
    va_end(ap);
    return n;
}

size_t Print::printlnf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vprintf(true, fmt, ap);
    va_end(ap);
    return n;
}

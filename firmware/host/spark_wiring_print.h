/*
 * Print / Stream (Device OS 2.3.1 wiring/inc/spark_wiring_print.h, spark_wiring_stream.h): the
 * subset used by the companion. A derived class implements write(uint8_t) and may override the
 * buffer write so that one line becomes one callback into the simulator.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "spark_wiring_string.h"

#define DEC 10
#define HEX 16
#define OCT 8
#define BIN 2

class Print {
public:
    virtual ~Print() = default;
    virtual size_t write(uint8_t c) = 0;
    virtual size_t write(const uint8_t* buf, size_t len);
    size_t write(const char* s) { return s ? write((const uint8_t*)s, strlen(s)) : 0; }
    size_t write(const char* buf, size_t len) { return write((const uint8_t*)buf, len); }

    size_t print(const char* s) { return write(s); }
    size_t print(const String& s) { return write((const uint8_t*)s.c_str(), s.length()); }
    size_t print(char c) { return write((uint8_t)c); }
    size_t print(unsigned char v, int base = DEC) { return print((unsigned long)v, base); }
    size_t print(int v, int base = DEC) { return print((long)v, base); }
    size_t print(unsigned int v, int base = DEC) { return print((unsigned long)v, base); }
    size_t print(long v, int base = DEC);
    size_t print(unsigned long v, int base = DEC);
    size_t print(double v, int digits = 2);

    size_t println() { return write("\r\n"); }
    template <typename T> size_t println(const T& v) { size_t n = print(v); return n + println(); }
    template <typename T> size_t println(const T& v, int arg) { size_t n = print(v, arg); return n + println(); }

    size_t printf(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    size_t printlnf(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    size_t vprintf(bool newline, const char* fmt, va_list ap);
};

class Stream : public Print {
public:
    virtual int available() = 0;
    virtual int read() = 0;
    virtual int peek() = 0;
    virtual void flush() = 0;
    void setTimeout(uint32_t ms) { timeout_ = ms; }

protected:
    uint32_t timeout_ = 1000;
};
